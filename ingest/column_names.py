"""Which header of a file each standard column was read from, as the file writes it.

A receipt names a column the way the statistician's own file does (`Cantidad`,
not `count`). The mapping is kept per submission (raw.submissions.column_names)
rather than worked out again when the receipt is written: a profile may be
edited in between, and the receipt must describe the file as it was read.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from ingest.layout import STANDARD_COLUMNS, normalise_name, standard_name
from ingest.profiles import Profile

# Several headers feeding one standard column (a wide table's columns) are
# listed with the separator S02's receipts use for headers named twice.
SEPARATOR = " | "


def as_written(header: str) -> str:
    """A header as the statistician sees it in the spreadsheet: no BOM, no edge spaces."""
    return header.lstrip("\ufeff").strip()


def column_names(profile: Profile, header: list[str]) -> dict[str, str | None]:
    """Standard column -> the header(s) it is read from; None when the profile fixes its value.

    Columns the file lacks are left out (S02 names them), and so are the
    optional ones filled with their default (`border_point` `_T`). For a wide
    table the count comes from several columns: all of them are given, because
    a receipt's problem names a row of the file, not one of its cells, and the
    statistician finds the offending cell of that row among them.
    """
    if profile.is_standard:
        names: dict[str, str | None] = {}
        for name in header:
            standard = standard_name(name)
            if standard:
                names.setdefault(standard, as_written(name))  # the first one is the one read
        return names

    written: dict[str, str] = {}
    for name in header:
        written.setdefault(normalise_name(name), as_written(name))

    def found(*sources: str | None) -> list[str]:
        return [written[normalise_name(s)] for s in sources if s and normalise_name(s) in written]

    wide = profile.wide
    wide_headers = found(*wide.columns, wide.total if wide and wide.total and wide.into != "month" else None) \
        if wide else []
    names = {}
    # The same order of precedence as ingest.transform.plan.
    for standard in STANDARD_COLUMNS:
        if wide and wide.into == standard:
            sources = wide_headers
        elif standard == "count" and wide and standard not in profile.columns:
            sources = wide_headers
        elif standard in profile.columns:
            sources = found(profile.columns[standard])
        elif standard in profile.constants:
            names[standard] = None
            continue
        elif standard == "period" and profile.period:
            sources = _period_sources(profile, found)
        else:
            continue
        if sources:
            names[standard] = SEPARATOR.join(sources)
    return names


def _period_sources(profile: Profile, found: Callable[..., list[str]]) -> list[str]:
    period = profile.period
    assert period is not None
    if period.column:
        return found(period.column)
    wide = profile.wide
    months = found(*wide.columns) if wide and wide.into == "month" else found(period.month)
    parts = [*found(period.year), SEPARATOR.join(months)] if months else found(period.year)
    # Year and month are read together, from two columns: "Año + Mes".
    return [" + ".join(parts)] if parts else []


def column_names_json(profile: Profile, header: list[str]) -> str:
    """The mapping as raw.submissions.column_names stores it (JSON text)."""
    return json.dumps(column_names(profile, header), ensure_ascii=False)
