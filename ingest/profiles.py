"""Submission profiles: a country's own export layout, declared once in YAML.

A profile says how to read a file (encoding, delimiter, lines to skip, sheet)
and how its columns become the standard long layout (column mapping, constants,
value maps, wide-to-long, periods from fiscal years or month names, number
formats, summing of dropped dimensions). The standard layout itself is the
profile with no mapping, so every file takes the same road into `raw`.
See docs/profiles.md.
"""
from __future__ import annotations

import fnmatch
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import HmoError
from ingest.layout import STANDARD_COLUMNS, normalise_name

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


class ProfileError(HmoError):
    """A profile file is not valid; names the file and the key."""


def normalise_value(text: str) -> str:
    """How value-map keys and month words compare: case, accents, dots and spacing ignored."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


_MONTH_WORDS = {
    1: "enero ene january jan janvier janv",
    2: "febrero feb february fevrier fev fevr",
    3: "marzo mar march mars",
    4: "abril abr april apr avril avr",
    5: "mayo may mai",
    6: "junio jun june juin",
    7: "julio jul july juillet juil",
    8: "agosto ago august aug aout",
    9: "septiembre setiembre sep sept set september septembre",
    10: "octubre oct october octobre",
    11: "noviembre nov november novembre",
    12: "diciembre dic december dec decembre",
}
MONTHS: dict[str, int] = {word: number for number, words in _MONTH_WORDS.items() for word in words.split()}


@dataclass(frozen=True)
class Wide:
    """Several source columns hold one standard column's values (months, sexes, ages)."""

    into: str  # a standard column, or "month"
    columns: dict[str, str]  # source column -> value it stands for
    total: str | None = None  # source column holding their total: loaded as `_T`, checked by C01


@dataclass(frozen=True)
class Period:
    column: str | None = None  # already YYYY-MM
    year: str | None = None
    month: str | None = None  # a column of month numbers or words; absent when months are wide
    fiscal_year_start_month: int = 1  # 10: fiscal year N runs from October N-1


@dataclass(frozen=True)
class Profile:
    name: str
    country: str
    description: str = ""
    file_name: str | None = None  # glob
    header: tuple[str, ...] = ()  # columns that identify the layout
    encoding: str | None = None
    delimiter: str | None = None
    skip_lines: int = 0
    sheet: str | None = None
    drop_rows: tuple[tuple[str, str], ...] = ()  # (source column, regex): rows to leave out
    columns: dict[str, str] = field(default_factory=dict)  # standard -> source column
    constants: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # standard -> {source value: code}
    wide: Wide | None = None
    period: Period | None = None
    thousands: str | None = None
    suppressed: tuple[str, ...] = ()
    sum_duplicates: bool = False
    path: Path | None = None

    @property
    def is_standard(self) -> bool:
        return self.name == STANDARD.name

    def source_columns(self) -> list[str]:
        """Every source column the profile reads."""
        names = list(self.columns.values())
        if self.wide:
            names += list(self.wide.columns) + ([self.wide.total] if self.wide.total else [])
        if self.period:
            names += [c for c in (self.period.column, self.period.year, self.period.month) if c]
        names += [column for column, _ in self.drop_rows]
        return list(dict.fromkeys(names))

    def matches(self, file_name: str, header: list[str]) -> float:
        """0 when it does not apply; otherwise how well (1 = the file name and every column)."""
        present = {normalise_name(h) for h in header}
        wanted = [normalise_name(h) for h in (self.header or self.source_columns())]
        share = sum(w in present for w in wanted) / len(wanted) if wanted else 0.0
        by_name = bool(self.file_name) and fnmatch.fnmatch(file_name.lower(), self.file_name.lower())
        if by_name:
            return 1.0 + share
        return share if share >= 0.5 else 0.0


STANDARD = Profile(name="standard", country="*", description="DATA_STANDARD.md §2 long layout")

_KEYS = {"name", "country", "description", "match", "read", "columns", "constants", "values",
         "wide", "period", "numbers", "sum_duplicates"}


def _require(condition: bool, path: Path, message: str) -> None:
    if not condition:
        raise ProfileError(f"{path.name}: {message}")


def parse_profile(path: Path) -> Profile:
    try:
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path.name}: not valid YAML: {exc}") from exc
    _require(isinstance(data, dict), path, "must be a mapping")
    unknown = set(data) - _KEYS
    _require(not unknown, path, f"unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    _require("name" in data and "country" in data, path, "needs `name` and `country`")
    match, read, numbers = data.get("match") or {}, data.get("read") or {}, data.get("numbers") or {}
    columns = {str(k): str(v) for k, v in (data.get("columns") or {}).items()}
    constants = {str(k): str(v) for k, v in (data.get("constants") or {}).items()}
    values = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in (data.get("values") or {}).items()}
    wide = None
    if data.get("wide"):
        w = data["wide"]
        _require("into" in w and "columns" in w, path, "`wide` needs `into` and `columns`")
        wide = Wide(into=str(w["into"]), columns={str(k): str(v) for k, v in w["columns"].items()},
                    total=w.get("total"))
    period = None
    if data.get("period"):
        p = data["period"]
        period = Period(column=p.get("column"), year=p.get("year") or p.get("fiscal_year"),
                        month=p.get("month"),
                        fiscal_year_start_month=int(p.get("fiscal_year_start_month", 10 if "fiscal_year" in p else 1)))
        _require(bool(period.column) or bool(period.year), path, "`period` needs `column` or `year`/`fiscal_year`")
        _require(bool(period.column) or bool(period.month) or (wide is not None and wide.into == "month"),
                 path, "`period` needs `month` unless months are wide columns")
    for name in [*columns, *constants, *values]:
        _require(name in STANDARD_COLUMNS, path, f"{name!r} is not a standard column ({', '.join(STANDARD_COLUMNS)})")
    if wide:
        _require(wide.into in STANDARD_COLUMNS or wide.into == "month", path, f"wide.into {wide.into!r} is not a standard column or `month`")
    profile = Profile(
        name=str(data["name"]), country=str(data["country"]).upper(), description=str(data.get("description", "")),
        file_name=match.get("file_name"), header=tuple(match.get("header") or ()),
        encoding=read.get("encoding"), delimiter=read.get("delimiter"), skip_lines=int(read.get("skip_lines", 0)),
        sheet=read.get("sheet"),
        drop_rows=tuple((str(r["column"]), str(r["matches"])) for r in (read.get("drop_rows") or [])),
        columns=columns, constants=constants, values=values, wide=wide, period=period,
        thousands=numbers.get("thousands"), suppressed=tuple(str(s) for s in numbers.get("suppressed") or ()),
        sum_duplicates=bool(data.get("sum_duplicates", False)), path=path,
    )
    given = set(columns) | set(constants) | ({wide.into, "count"} if wide else set()) | ({"period"} if period else set())
    missing = [c for c, (_, required, _) in STANDARD_COLUMNS.items() if required and c not in given and c != "reporting_country"]
    _require(not missing, path, f"maps no source for required columns {missing}")
    return profile


def load_profiles(directory: Path | None = None) -> list[Profile]:
    return [parse_profile(path) for path in sorted((directory or PROFILES_DIR).glob("*.yml"))]


def standard_score(header: list[str]) -> float:
    """Share of the standard columns a header names (English or Spanish)."""
    from ingest.layout import standard_name

    return len({standard_name(h) for h in header} - {None}) / len(STANDARD_COLUMNS)


def choose(candidates: list[tuple[Profile, list[str]]], file_name: str) -> Profile:
    """The best of (profile, header as that profile reads the file); the standard layout wins ties."""
    best, best_score = STANDARD, 0.0
    for profile, header in candidates:
        score = standard_score(header) if profile.is_standard else profile.matches(file_name, header)
        if score > best_score:
            best, best_score = profile, score
    return best
