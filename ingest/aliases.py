"""Each reporting country's own spellings of country names: its alias files.

A name that two countries share (French `Guyane` is French Guiana; IRCC
writes it for Guyana) never resolves by guess: it resolves through the
reporting country's alias file, else it is an R02 error naming both. The
files are data, one CSV per country (`<ISO3>.csv`: name, code, source,
added_by, added_at), kept in two places read alike: ingest/aliases/ ships
with the code (reviewed like the profiles) and `<data>/aliases/` holds what
`hmo aliases add` recorded. Every ingest loads both into raw.national_aliases,
which dbt reads as a source.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb

from hmo.durable import write_text_atomically
from hmo.errors import HmoError
from hmo.settings import ISO3_MEMBERS, Paths
from ingest import raw_lake

PACKAGED = Path(__file__).resolve().parent / "aliases"
COLUMNS = ("name", "code", "source", "added_by", "added_at")


class AliasFileError(HmoError):
    """An alias file cannot be read; names the file and the line."""


@dataclass(frozen=True)
class Alias:
    reporting_country: str
    name: str
    code: str
    source: str
    added_by: str
    added_at: str
    alias_file: Path


def alias_files(paths: Paths) -> list[Path]:
    found = [*sorted(PACKAGED.glob("*.csv")), *sorted(paths.aliases.glob("*.csv"))]
    return [path for path in found if path.is_file()]


def read_file(path: Path) -> list[Alias]:
    country = path.stem.upper()
    if country not in ISO3_MEMBERS:
        raise AliasFileError(f"{path}: the file name must be a reporting country's ISO3 code (e.g. CAN.csv)")
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise AliasFileError(f"{path}: the header must be {','.join(COLUMNS)}")
            aliases = []
            for line, row in enumerate(reader, start=2):
                name, code = (row.get("name") or "").strip(), (row.get("code") or "").strip().upper()
                if not name or not code or not (row.get("source") or "").strip():
                    raise AliasFileError(f"{path}, line {line}: name, code and source are required")
                aliases.append(Alias(country, name, code, row["source"].strip(), (row.get("added_by") or "").strip(),
                                     (row.get("added_at") or "").strip(), path))
            return aliases
    except UnicodeDecodeError as exc:
        raise AliasFileError(f"{path}: not UTF-8 ({exc.reason})") from exc
    except csv.Error as exc:
        raise AliasFileError(f"{path}: not a CSV file ({exc})") from exc


def read_all(paths: Paths) -> list[Alias]:
    return [alias for path in alias_files(paths) for alias in read_file(path)]


def load(con: duckdb.DuckDBPyConnection, paths: Paths) -> int:
    """Replace raw.national_aliases with what the alias files say now (after the seeds are loaded)."""
    aliases = read_all(paths)
    known = {row[0] for row in con.execute(
        "select iso3 from seeds.countries union all select code from seeds.cl_nat_extra").fetchall()}
    for alias in aliases:
        if alias.code not in known:
            raise AliasFileError(f"{alias.alias_file}: {alias.name!r} -> {alias.code}: not a code of the "
                                 "country list nor of CL_NAT_EXTRA")
    con.execute("begin transaction")
    try:
        con.execute("delete from raw.national_aliases")
        con.executemany(
            "insert into raw.national_aliases values (?, ?, ?, ?, ?, ?, ?)",
            [(a.reporting_country, a.name, a.code, a.source, a.added_by or None, a.added_at or None,
              str(a.alias_file)) for a in aliases],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    raw_lake.write_aliases(con, paths)
    return len(aliases)


class AliasRefused(HmoError):
    """`hmo aliases add` would make a name mean something it does not, or repeat a line."""


@dataclass(frozen=True)
class Added:
    alias: Alias
    fixes: list[tuple[int, str]]  # rejected submissions of the country whose R02 values the alias resolves


def _resolution(con: duckdb.DuckDBPyConnection, country: str, name: str) -> tuple[str | None, list[str]]:
    """How the name resolves for the country now: (code or None, candidates when ambiguous).

    The order is dbt's (dbt_project/macros/country_name_candidates.sql), asked
    through the table macro it creates.
    """
    found = con.execute("select codes from main.country_name_codes(?, ?)", [country, name]).fetchone()
    assert found is not None  # the macro's query always returns its one row
    codes = found[0] or []
    return (codes[0] if len(codes) == 1 else None), list(codes)


def add(con: duckdb.DuckDBPyConnection, paths: Paths, country: str, name: str, code: str, added_by: str,
        source: str | None = None, added_at: str | None = None, record_event: bool = True) -> Added:
    """Record that `country` writes `name` for `code`, in its alias file, with who and when.

    A name that already resolves for the country is left alone: to the same
    code there is nothing to add, and to another code the alias would change
    figures already accepted under the old meaning.
    """
    from datetime import datetime, timezone

    from hmo import events

    country, code, name = country.upper(), code.upper(), name.strip()
    if country not in ISO3_MEMBERS:
        raise AliasRefused(f"{country} is not a reporting country (RCM or SACM member)")
    if not name:
        raise AliasRefused("the name is empty")
    try:
        known = con.execute(
            "select 1 from seeds.countries where iso3 = ? union all select 1 from seeds.cl_nat_extra where code = ?",
            [code, code]).fetchone()
        resolved, candidates = _resolution(con, country, name)
    except duckdb.CatalogException as exc:
        raise AliasRefused("the warehouse has no code lists yet: run `hmo run` once first") from exc
    if not known:
        raise AliasRefused(f"{code} is not a code of the country list nor of CL_NAT_EXTRA")
    if resolved == code:
        raise AliasRefused(f"{name!r} already resolves to {code} for {country}: nothing to add")
    if resolved is not None:
        raise AliasRefused(f"{name!r} already resolves to {resolved} for {country}; an alias to {code} would "
                           "change figures accepted under that meaning (ask the Observatory's data manager)")
    if len(candidates) > 1 and code not in candidates:
        raise AliasRefused(f"{name!r} is a name of {' and '.join(candidates)}, not of {code}")
    alias = Alias(country, name, code, source or f"requested by {added_by} (hmo aliases add)", added_by,
                  added_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  paths.aliases / f"{country}.csv")
    write_line(alias)
    if record_event:
        events.record(paths, "alias_added", reporting_country=country, name=name, code=code,
                      source=alias.source, added_by=added_by, added_at=alias.added_at)
    load(con, paths)
    fixes = con.execute(
        """
        select distinct f.submission_id, f.file_name
        from marts.fct_rule_failures as f
        join marts.fct_submissions as s using (submission_id)
        where s.reporting_country = ? and s.status = 'rejected' and f.rule_id = 'R02'
          and f.column_name in ('nationality', 'counterpart_country')
          and main.name_key(f.value) = main.name_key(?)
        order by 1
        """,
        [country, name],
    ).fetchall()
    return Added(alias, [(row[0], row[1]) for row in fixes])


def write_line(alias: Alias) -> None:
    """Append to the country's alias file, whole or not at all (rewritten beside, then renamed)."""
    path = alias.alias_file
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text(encoding="utf-8") if path.exists() else ",".join(COLUMNS) + "\n"
    if not existing.endswith("\n"):
        existing += "\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        [alias.name, alias.code, alias.source, alias.added_by, alias.added_at])
    write_text_atomically(path, existing + buffer.getvalue(), newline="")


def replay(paths: Paths, event: dict) -> bool:
    """Put back an `alias_added` line that the data directory lost (for `hmo rebuild`)."""
    path = paths.aliases / f"{event['reporting_country']}.csv"
    present = path.exists() and any(a.name == event["name"] and a.code == event["code"] for a in read_file(path))
    if not present:
        write_line(Alias(event["reporting_country"], event["name"], event["code"], event["source"],
                         event["added_by"], event["added_at"], path))
    return not present
