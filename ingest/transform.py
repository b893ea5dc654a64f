"""A profile applied to a file's columns, as one DuckDB SELECT (no Python per row).

The SELECT reads a relation of text columns c0..cN with `source_row`, and
yields the standard columns, still as text: checking them is the suites' job.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ingest.layout import STANDARD_COLUMNS, normalise, normalise_name, normalise_sql, standard_name
from ingest.profiles import MONTHS, Profile


@dataclass(frozen=True)
class Plan:
    sql: str
    missing: list[str]  # "standard column=source column" the file lacks
    ignored: list[str]  # source columns nothing reads
    named_twice: list[str]  # "standard column=header|header": one column the header names more than once
    # Rows of raw.load_failures (rule_id, severity, source_row, column_name, value, detail) for
    # month columns that do not add up to their total column; None when the layout has none.
    month_totals: str | None = None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _mapped(expression: str, mapping: dict[str, str]) -> str:
    if not mapping:
        return expression
    whens = " ".join(f"when {_quote(normalise(k))} then {_quote(v)}" for k, v in mapping.items())
    return f"(case {normalise_sql(expression)} {whens} else {expression} end)"


def _month_number(expression: str) -> str:
    whens = " ".join(f"when {_quote(word)} then {number}" for word, number in MONTHS.items())
    return f"coalesce(try_cast({expression} as integer), case {normalise_sql(expression)} {whens} end)"


def _suppressed(expression: str, profile: Profile) -> str:
    markers = ", ".join(_quote(m) for m in profile.suppressed)
    return f"trim({expression}) in ({markers})" if profile.suppressed else "false"


def _count_cell(expression: str, profile: Profile) -> str:
    """A count cell as raw keeps it: whole groups of thousands joined, suppression markers emptied."""
    trimmed = f"trim({expression})"
    cell = expression
    if profile.thousands:
        separator = profile.thousands.replace(".", r"\.")
        cell = (f"(case when regexp_full_match({trimmed}, '[0-9]{{1,3}}({separator}[0-9]{{3}})+') "
                f"then replace({trimmed}, {_quote(profile.thousands)}, '') else {cell} end)")
    if profile.suppressed:
        cell = f"(case when {_suppressed(expression, profile)} then null else {cell} end)"
    return cell


def _whole_number(cell: str) -> str:
    # What int_observations__resolved_rows reads as a count; anything else is R03's to report.
    return f"(case when regexp_full_match(trim({cell}), '[0-9]{{1,15}}') then trim({cell})::hugeint end)"


def _month_totals(profile: Profile, column: Callable[[str, str], str]) -> str | None:
    """C01 for a month-wide layout's total column, row by row, as rule failures.

    Sex or age columns' total is loaded as a `_T` row that C01 checks. A total
    over months cannot be: a period is one month and has no `_T`, so the
    warehouse can hold no such row. It is checked here, on the file's own
    rows, with C01's terms: the parts, when all given, add up to the total,
    and never exceed it; a total that is not a number adds up to nothing.
    """
    wide = profile.wide
    if not (wide and wide.into == "month" and wide.total):
        return None
    parts = [_whole_number(_count_cell(column(name, "period"), profile)) for name in wide.columns]
    total_cell = _count_cell(column(wide.total, "period"), profile)
    return f"""
select 'C01' as rule_id, 'error' as severity, source_row, 'period' as column_name,
       coalesce(total::varchar, total_text) as value, parts_sum::varchar as detail
from (
    select source_row, nullif(trim({total_cell}), '') as total_text, {_whole_number(total_cell)} as total,
           {" + ".join(f"coalesce({part}, 0)" for part in parts)} as parts_sum,
           {" and ".join(f"{part} is not null" for part in parts)} as all_given
    from kept
)
where total_text is not null
  and (total is null or (all_given and parts_sum <> total) or parts_sum > total)"""


def _feeds(profile: Profile) -> dict[str, str]:
    """Each source column a profile reads (normalised) -> the standard column it feeds."""
    feeds: dict[str, str] = {}
    for standard, name in profile.columns.items():
        feeds.setdefault(normalise_name(name), standard)
    if profile.wide:
        into = "period" if profile.wide.into == "month" else profile.wide.into
        for name in [*profile.wide.columns, *([profile.wide.total] if profile.wide.total else [])]:
            feeds.setdefault(normalise_name(name), into)
    if profile.period:
        for column in (profile.period.column, profile.period.year, profile.period.month):
            if column:
                feeds.setdefault(normalise_name(column), "period")
    for name, _ in profile.drop_rows:  # read only to drop rows: named as the profile names it
        feeds.setdefault(normalise_name(name), name)
    return feeds


def named_twice(profile: Profile, header: list[str]) -> list[str]:
    """Columns a file names more than once, as "standard column=header|header".

    Reading the first of two `count` columns (or of `count` and `cantidad`)
    would pick one figure silently; which one the country meant is theirs to
    say. In the standard layout two headers clash when they map to the same
    standard column; under a profile, when one source column it reads appears
    twice. Headers nothing reads may repeat.
    """
    feeds = _feeds(profile)
    groups: dict[str, tuple[str, list[str]]] = {}
    for name in header:
        if profile.is_standard:
            key = label = standard_name(name)
        else:
            key = normalise_name(name)
            label = feeds.get(key)
        if key and label:
            groups.setdefault(key, (label, []))[1].append(name)
    return [f"{label}={'|'.join(names)}" for label, names in groups.values() if len(names) > 1]


def plan(profile: Profile, header: list[str], country: str, source: str, year: str | None = None) -> Plan:
    """The SELECT of a file's standard rows; `year` is the one its name or title says
    (Profile.year_of), for a profile that reads it there."""
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        positions.setdefault(normalise_name(name), index)

    missing: list[str] = []

    def column(source_name: str, standard: str) -> str:
        index = positions.get(normalise_name(source_name))
        if index is None:
            missing.append(f"{standard}={source_name}")
            return "null"
        # Cells go to raw as read: stg_raw__observations trims and blanks them,
        # and trimming 10M rows here cost ~2 s of a ~13 s load (docs/benchmarks.md).
        return f"c{index}"

    columns = dict(profile.columns)
    if profile.is_standard:
        for name in header:
            standard = standard_name(name)
            if standard and standard not in columns:
                columns[standard] = name

    wide = profile.wide
    exprs: dict[str, str] = {}
    for standard, (_, required, default) in STANDARD_COLUMNS.items():
        if wide and wide.into == standard:
            expr = "wide_key"
        elif standard == "count" and wide and standard not in columns:
            expr = "wide_value"
        elif standard in columns:
            expr = column(columns[standard], standard)
        elif standard in profile.constants:
            expr = _quote(profile.constants[standard])
        elif standard == "reporting_country" and not profile.is_standard:
            expr = _quote(country)
        elif standard == "period" and profile.period:
            expr = "period_text"
        elif required:
            missing.append(standard)
            expr = "null"
        else:
            expr = _quote(default or "")
        exprs[standard] = _mapped(expr, profile.values.get(standard, {}))

    period_sql = "null"
    if profile.period:
        p = profile.period
        if p.column:
            period_sql = column(p.column, "period")
        else:
            if p.year_from:
                if year is None:
                    raise ValueError(f"profile {profile.name} reads the year from the file name or title: "
                                     "plan() needs it (Profile.year_of)")
                year_sql = _quote(year)
            else:
                year_sql = column(p.year or "", "period")
            month = "wide_key" if wide and wide.into == "month" else column(p.month or "", "period")
            start = p.fiscal_year_start_month
            shift = f"(case when {_month_number(month)} >= {start} then 1 else 0 end)" if start > 1 else "0"
            period_sql = (
                f"case when {_month_number(month)} between 1 and 12 and try_cast({year_sql} as integer) is not null "
                f"then printf('%04d-%02d', try_cast({year_sql} as integer) - {shift}, {_month_number(month)}) "
                f"else concat_ws(' ', {year_sql}, {month}) end"
            )

    if profile.suppressed:
        suppressed = _suppressed(exprs["count"], profile)
        exprs["obs_status"] = f"(case when {suppressed} then 'Q' else {exprs['obs_status']} end)"
    exprs["count"] = _count_cell(exprs["count"], profile)

    # A drop rule whose column the file lacks has nothing to drop.
    drop = " and ".join(
        f"not coalesce(regexp_matches(c{positions[normalise_name(name)]}, {_quote(pattern)}), false)"
        for name, pattern in profile.drop_rows if normalise_name(name) in positions
    ) or "true"
    every_cell = ", ".join(f"c{i}" for i in range(len(header))) or "null"

    unnest = ""
    if wide:
        # Named as the standard column they feed (months feed the period), as S02 reports them.
        feeds = "period" if wide.into == "month" else wide.into
        pairs = [f"{{'k': {_quote(value)}, 'v': {column(name, feeds)}}}" for name, value in wide.columns.items()]
        if wide.total and wide.into != "month":
            pairs.append(f"{{'k': '_T', 'v': {column(wide.total, feeds)}}}")
        unnest = f", unnest([{', '.join(pairs)}]) as w"
    month_totals = _month_totals(profile, column)

    select_list = ",\n       ".join(f"{exprs[c]} as {c}" for c in STANDARD_COLUMNS)
    kept = f"""
with kept as (
    select * from {source}
    where coalesce({every_cell}) is not null and {drop}
)"""
    body = kept + f""",
spread as (
    select kept.*{unnest} from kept
),
located as (
    select *{", w.k as wide_key, w.v as wide_value" if wide else ""} from spread
),
dated as (
    select *, {period_sql} as period_text from located
),
mapped as (
    select source_row,
       {select_list}
    from dated
)"""
    final = f"select source_row, {', '.join(STANDARD_COLUMNS)} from mapped"

    read = {normalise_name(n) for n in (profile.source_columns() if not profile.is_standard else columns.values())}
    ignored = [h for h in header if normalise_name(h) not in read]
    return Plan(body + final, missing=list(dict.fromkeys(missing)), ignored=ignored,
                named_twice=named_twice(profile, header),
                month_totals=kept + month_totals if month_totals else None)
