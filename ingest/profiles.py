"""Submission profiles: a country's own export layout, declared once in YAML.

A profile says how to read a file (encoding, delimiter, lines to skip, sheet)
and how its columns become the standard long layout (column mapping, constants,
value maps, wide-to-long, periods from fiscal years, month names or a year in
the file name or title, number formats, summing of dropped dimensions). The
standard layout itself is the profile with no mapping, so every file takes the
same road into `raw`. A profile is checked against SCHEMA when it is loaded:
one ProfileError names the file and the key. See docs/profiles.md.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hmo.errors import HmoError
from ingest.layout import STANDARD_COLUMNS, normalise, normalise_name, standard_name
from hmo.settings import ISO3_MEMBERS
from ingest.sniff import DELIMITERS

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "latin-1")


class ProfileError(HmoError):
    """A profile file is not valid; names the file and the key."""


class YearNotFound(ValueError):
    """A file does not say its year where its profile reads it, or says two years (Spanish / English)."""


def profiles_dir() -> Path:
    """HMO_PROFILES_DIR when set (to try profiles, or in tests), else the packaged folder."""
    configured = os.environ.get("HMO_PROFILES_DIR")
    return Path(configured) if configured else PROFILES_DIR


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


def month_number(value: str) -> int | None:
    """1-12 for a month number or word the transform reads (transform._month_number), else None."""
    text = value.strip()
    number = int(text) if text.isdigit() else MONTHS.get(normalise(text))
    return number if number is not None and 1 <= number <= 12 else None


@dataclass(frozen=True)
class Wide:
    """Several source columns hold one standard column's values (months, sexes, ages)."""

    into: str  # a standard column, or "month"
    columns: dict[str, str]  # source column -> value it stands for
    total: str | None = None  # their total: a `_T` row checked by C01; for months, checked by C01 at load


@dataclass(frozen=True)
class YearFrom:
    """Where a layout with no year column says its year: in the file name, a title line, or both."""

    file_name: str | None = None  # regex with a named group `year`, searched in the file name
    title: str | None = None  # the same, searched in the lines before the header
    line: int | None = None  # the title's line (1 = the file's first); default: the first that matches


@dataclass(frozen=True)
class Period:
    column: str | None = None  # already YYYY-MM
    year: str | None = None  # a column of years (fiscal years when fiscal_year_start_month > 1)
    month: str | None = None  # a column of month numbers or words; absent when months are wide
    year_from: YearFrom | None = None  # instead of `year`: the year the file name or title says
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
        """0 when it does not apply; otherwise how well (2 = the file name and every column).

        Every criterion the profile gives must hold: its file-name pattern, and
        at least half of its `header` (or, when it gives neither, of the
        columns it reads). Half, not all, so that a renamed column is reported
        under the profile (S02 naming it) rather than as a standard-layout file.
        """
        present = {normalise_name(h) for h in header}
        wanted = [normalise_name(h) for h in (self.header or self.source_columns())]
        share = sum(w in present for w in wanted) / len(wanted) if wanted else 0.0
        if self.file_name:
            if not fnmatch.fnmatch(file_name.lower(), self.file_name.lower()):
                return 0.0
            return 0.0 if self.header and share < 0.5 else 1.0 + share
        return share if share >= 0.5 else 0.0

    def year_of(self, file_name: str, preamble: list[str]) -> str | None:
        """The year a file's name or title says, for a profile that reads it there (else None).

        Raises YearNotFound when a pattern finds no year or the name and the
        title disagree: the file is refused rather than loaded as a guessed year.
        """
        source = self.period.year_from if self.period else None
        if source is None:
            return None
        shown = self.path.name if self.path else self.name
        years: list[tuple[str, str, str]] = []  # (year, where in Spanish, where in English)
        if source.file_name:
            found = re.search(source.file_name, file_name, re.IGNORECASE)
            if not found:
                raise YearNotFound(
                    f"el nombre del archivo no dice el año: el perfil {shown} lo busca con el patrón "
                    f"{source.file_name} / the file name does not give the year: profile {shown} looks for it "
                    f"with the pattern {source.file_name}")
            years.append((found.group("year"), "el nombre del archivo", "the file name"))
        if source.title:
            numbered = list(enumerate(preamble, start=1))
            lines = [(n, t) for n, t in numbered if n == source.line] if source.line else numbered
            found_line = next(((n, m) for n, t in lines if (m := re.search(source.title, t, re.IGNORECASE))), None)
            if found_line is None:
                where_es, where_en = ((f"la línea {source.line}", f"line {source.line}") if source.line
                                      else ("ninguna línea antes del encabezado", "no line before the header"))
                raise YearNotFound(
                    f"{where_es} no dice el año: el perfil {shown} lo busca con el patrón {source.title} / "
                    f"{where_en} does not give the year: profile {shown} looks for it with the pattern "
                    f"{source.title}")
            number, match = found_line
            years.append((match.group("year"), f"el título (línea {number})", f"the title (line {number})"))
        for year, where_es, where_en in years:
            if not re.fullmatch(r"[0-9]{4}", year):
                raise YearNotFound(f"{where_es} dice {year!r}, que no es un año de cuatro cifras / "
                                   f"{where_en} says {year!r}, which is not a four-digit year")
        if len({year for year, _, _ in years}) > 1:
            (a, a_es, a_en), (b, b_es, b_en) = years
            raise YearNotFound(
                f"{a_es} dice {a} y {b_es} dice {b}: el archivo no se carga como ninguno de los dos años / "
                f"{a_en} says {a} and {b_en} says {b}: the file is loaded as neither year")
        return years[0][0]


STANDARD = Profile(name="standard", country="*", description="DATA_STANDARD.md §2 long layout")


# The schema: a section is a dict of its allowed keys; TEXT, WHOLE and FLAG are
# scalars; [x] is a list of x; MapOf(x) a mapping of free keys (source columns,
# values) to x, MapOf(x, standard_keys=True) one keyed by standard columns.
@dataclass(frozen=True)
class Scalar:
    kind: str  # how the error names it


@dataclass(frozen=True)
class MapOf:
    value: Any
    standard_keys: bool = False


TEXT, WHOLE, FLAG = Scalar("text"), Scalar("a whole number"), Scalar("true or false")
_YEAR_FROM = {"file_name": TEXT, "title": TEXT, "line": WHOLE}
SCHEMA: dict[str, Any] = {
    "name": TEXT,
    "country": TEXT,
    "description": TEXT,
    "match": {"file_name": TEXT, "header": [TEXT]},
    "read": {"encoding": TEXT, "delimiter": TEXT, "skip_lines": WHOLE, "sheet": TEXT,
             "drop_rows": [{"column": TEXT, "matches": TEXT}]},
    "columns": MapOf(TEXT, standard_keys=True),
    "constants": MapOf(TEXT, standard_keys=True),
    "values": MapOf(MapOf(TEXT), standard_keys=True),
    "wide": {"into": TEXT, "columns": MapOf(TEXT), "total": TEXT},
    "period": {"column": TEXT, "year": TEXT, "fiscal_year": TEXT, "month": TEXT,
               "year_from": _YEAR_FROM, "fiscal_year_from": _YEAR_FROM, "fiscal_year_start_month": WHOLE},
    "numbers": {"thousands": TEXT, "suppressed": [TEXT]},
    "sum_duplicates": FLAG,
}


class _Invalid(Exception):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)


def _at(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def _text(value: Any, where: str) -> str:
    # YAML reads unquoted yes/no/on/off as booleans and 2024-01-31 as a date:
    # "No" as a value-map key would silently become "False".
    if isinstance(value, bool):
        raise _Invalid(where, f"expected text, got {value!r}: YAML reads an unquoted yes, no, on or off "
                              "as true or false; put it in quotes")
    if not isinstance(value, (str, int, float)):
        raise _Invalid(where, f"expected text, got {value!r} (YAML read it as {type(value).__name__}; "
                              "put it in quotes)")
    return str(value)


def _not_standard(name: str) -> str:
    alias = standard_name(name)
    hint = f"; did you mean {alias}?" if alias else ""
    return f"{name!r} is not a standard column ({', '.join(STANDARD_COLUMNS)}){hint}"


def checked(value: Any, schema: Any, where: str = "") -> Any:
    """The value with its text as str, or _Invalid naming the key path; a null value is an absent key."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise _Invalid(where, f"expected a mapping of keys ({', '.join(schema)}), got {value!r}")
        unknown = [k for k in value if k not in schema]
        if unknown:
            raise _Invalid(_at(where, unknown[0]), f"unknown key; allowed: {', '.join(schema)}")
        return {k: checked(v, schema[k], _at(where, k)) for k, v in value.items() if v is not None}
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise _Invalid(where, f"expected a list, got {value!r}")
        return [checked(item, schema[0], f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            raise _Invalid(where, f"expected a mapping, got {value!r}")
        out = {}
        for key, item in value.items():
            name = _text(key, _at(where, key))
            if schema.standard_keys and name not in STANDARD_COLUMNS:
                raise _Invalid(_at(where, name), _not_standard(name))
            out[name] = checked(item, schema.value, _at(where, name))
        return out
    if schema is TEXT:
        return _text(value, where)
    # YAML's true is also an int to Python: neither kind takes the other.
    wrong = isinstance(value, bool) or not isinstance(value, int) if schema is WHOLE else not isinstance(value, bool)
    if wrong:
        raise _Invalid(where, f"expected {schema.kind}, got {value!r}")
    return value


def _require(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise _Invalid(where, problem)


def _pattern(text: str, where: str) -> str:
    try:
        compiled = re.compile(text)
    except re.error as exc:
        raise _Invalid(where, f"not a valid regular expression: {exc}") from None
    _require("year" in compiled.groupindex, where, "needs a named group `year`, e.g. (?P<year>20[0-9]{2})")
    return text


def _year_from(data: dict[str, Any], where: str, skip_lines: int) -> YearFrom:
    _require("file_name" in data or "title" in data, where, "needs `file_name` or `title` (or both)")
    line = data.get("line")
    if "title" in data:
        _require(skip_lines >= 1, where + ".title", "a title is a line before the header: set read.skip_lines")
        _require(line is None or 1 <= line <= skip_lines, where + ".line",
                 f"must be a title line, 1 to read.skip_lines ({skip_lines})")
    else:
        _require(line is None, where + ".line", "applies to `title` only")
    return YearFrom(
        file_name=_pattern(data["file_name"], where + ".file_name") if "file_name" in data else None,
        title=_pattern(data["title"], where + ".title") if "title" in data else None,
        line=line,
    )


def _period(p: dict[str, Any], wide: Wide | None, skip_lines: int) -> Period:
    sources = [k for k in ("column", "year", "fiscal_year", "year_from", "fiscal_year_from") if k in p]
    _require(len(sources) == 1, "period", "needs one of `column`, `year`, `fiscal_year`, `year_from`, "
             "`fiscal_year_from`" + (f" (it gives {', '.join(sources)})" if sources else ""))
    for key in ("year", "fiscal_year"):
        _require(not re.fullmatch(r"[0-9]{4}", p.get(key, "")), f"period.{key}",
                 f"{p.get(key)} is a year, not a column: a profile never fixes the year; when no column "
                 "holds it, read it with period.year_from (file_name or title)")
    fiscal = sources[0] in ("fiscal_year", "fiscal_year_from")
    # Assuming October when a profile says fiscal_year without its start loaded a
    # calendar-year file's October-December as the year before: the start is said, never guessed.
    _require(fiscal == ("fiscal_year_start_month" in p), "period.fiscal_year_start_month",
             "required with `fiscal_year` and `fiscal_year_from` (US: 10)" if fiscal
             else "applies to `fiscal_year` and `fiscal_year_from` only")
    start = p.get("fiscal_year_start_month", 1)
    _require(1 <= start <= 12, "period.fiscal_year_start_month", f"must be a month, 1 to 12, got {start}")
    if "column" in p:
        _require("month" not in p, "period.month", "`column` already holds the month (YYYY-MM)")
    else:
        _require("month" in p or (wide is not None and wide.into == "month"), "period",
                 "needs `month` unless months are wide columns (wide.into: month)")
        _require("month" not in p or wide is None or wide.into != "month", "period.month",
                 "the months are wide columns (wide.into: month)")
    from_key = next((k for k in ("year_from", "fiscal_year_from") if k in p), None)
    return Period(
        column=p.get("column"), year=p.get("year") or p.get("fiscal_year"), month=p.get("month"),
        year_from=_year_from(p[from_key], f"period.{from_key}", skip_lines) if from_key else None,
        fiscal_year_start_month=start,
    )


def _wide(w: dict[str, Any], columns: dict[str, str]) -> Wide:
    _require("into" in w and "columns" in w, "wide", "needs `into` and `columns`")
    into = w["into"]
    _require(into == "month" or into in STANDARD_COLUMNS, "wide.into", f"{_not_standard(into)}, nor `month`")
    _require(into not in ("count", "reporting_country"), "wide.into", f"{into!r} cannot be spread over columns")
    _require(into not in columns, "wide.into", f"{into!r} is also mapped in columns.{into}")
    _require(bool(w["columns"]), "wide.columns", "names no column")
    if into == "month":
        for name, value in w["columns"].items():
            _require(month_number(value) is not None, f"wide.columns.{name}",
                     f"{value!r} is not a month (1 to 12, or a month word such as Enero, Jan, janv.)")
    return Wide(into=into, columns=dict(w["columns"]), total=w.get("total"))


def _profile(data: dict[str, Any], path: Path) -> Profile:
    for key in ("name", "country"):
        _require(key in data, key, "required")
    country = data["country"].upper()
    _require(country in ISO3_MEMBERS, "country", f"{data['country']!r} is not the ISO3 code of a member country")
    match, read, numbers = data.get("match", {}), data.get("read", {}), data.get("numbers", {})
    columns, constants, values = data.get("columns", {}), data.get("constants", {}), data.get("values", {})
    _require("header" not in match or bool(match["header"]), "match.header", "names no column")
    _require(read.get("encoding") in (None, *ENCODINGS), "read.encoding",
             f"{read.get('encoding')!r} is not one of {', '.join(ENCODINGS)}")
    _require(read.get("delimiter") in (None, *DELIMITERS), "read.delimiter",
             f"{read.get('delimiter')!r} is not one of {', '.join(map(repr, DELIMITERS))}")
    skip_lines = read.get("skip_lines", 0)
    _require(skip_lines >= 0, "read.skip_lines", f"must be 0 or more, got {skip_lines}")
    for i, rule in enumerate(read.get("drop_rows", [])):
        for key in ("column", "matches"):
            _require(key in rule, f"read.drop_rows[{i}]", f"needs `{key}`")
    # A year written into a profile loads next year's file as this year's.
    for section in ("constants", "values"):
        _require("period" not in data.get(section, {}), f"{section}.period",
                 "a profile never fixes the period: read it with period.column, period.year and "
                 "period.month, or period.year_from (the year the file name or title says)")
    _require(data.get("wide", {}).get("into") != "period", "wide.into",
             "a profile never fixes the period: for months as columns use `into: month` with "
             "period.year or period.year_from")
    wide = _wide(data["wide"], columns) if "wide" in data else None
    period = _period(data["period"], wide, skip_lines) if "period" in data else None
    given = set(columns) | set(constants) | ({wide.into, "count"} if wide else set()) | ({"period"} if period else set())
    missing = [c for c, (_, required, _) in STANDARD_COLUMNS.items() if required and c not in given and c != "reporting_country"]
    _require(not missing, "", f"maps no source for required columns {missing}")
    return Profile(
        name=data["name"], country=country, description=data.get("description", ""),
        file_name=match.get("file_name"), header=tuple(match.get("header", ())),
        encoding=read.get("encoding"), delimiter=read.get("delimiter"), skip_lines=skip_lines,
        sheet=read.get("sheet"),
        drop_rows=tuple((r["column"], r["matches"]) for r in read.get("drop_rows", [])),
        columns=columns, constants=constants, values=values, wide=wide, period=period,
        thousands=numbers.get("thousands"), suppressed=tuple(numbers.get("suppressed", ())),
        sum_duplicates=data.get("sum_duplicates", False), path=path,
    )


def parse_profile(path: Path) -> Profile:
    """The profile in a YAML file; ProfileError names the file and the key when it is not valid."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path.name}: not valid YAML: {' '.join(str(exc).split())}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path.name}: cannot be read: {exc}") from None
    try:
        return _profile(checked(data, SCHEMA), path)
    except _Invalid as exc:
        raise ProfileError(f"{path.name}: {exc}") from None


def load_profiles(directory: Path | None = None) -> list[Profile]:
    return [parse_profile(path) for path in sorted((directory or profiles_dir()).glob("*.yml"))]


def standard_score(header: list[str]) -> float:
    """Share of the standard columns a header names (English or Spanish)."""
    return len({standard_name(h) for h in header} - {None}) / len(STANDARD_COLUMNS)


def choose(candidates: list[tuple[Profile, list[str]]], file_name: str) -> Profile:
    """The best of (profile, header as that profile reads the file); the standard layout wins ties."""
    best, best_score = STANDARD, 0.0
    for profile, header in candidates:
        score = standard_score(header) if profile.is_standard else profile.matches(file_name, header)
        if score > best_score:
            best, best_score = profile, score
    return best
