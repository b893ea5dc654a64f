"""The figures of the monthly report to the PPT, read from the published marts.

Every section is relative to the report's month (issue #13). Plain functions
on a DuckDB connection, so tests build them from a real warehouse and check
them against the warehouse's own tables.

Completeness follows DHIS2's data-set reporting rates: a country-month is
*expected* once its due date has passed (seed reporting_deadlines, Q01);
REPORTING_RATE = months with an accepted submission / expected months,
REPORTING_RATE_ON_TIME = months accepted by their due date / expected months,
each over the 24 months up to the report's month.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb

from expectations.rules import RULES_BY_ID
from report.early_warning import MIN_MONTHS, judge_series
from hmo.months import shift, window as months_window
from hmo.errors import HmoError
from hmo.settings import ISO3_MEMBERS

WINDOW_MONTHS = 24
STANDARD_DUE_DAY = 15  # Q01: month M is due by the 15th of M+1 where no due day is known (the seed's default)
TOP_NATIONALITIES = 5


class NoReportableMonth(HmoError):
    """No month has accepted data yet, or the month asked for is not a month."""


@dataclass(frozen=True)
class Cell:
    period: date
    state: str  # on_time | late | rejected | missing | not_due


@dataclass(frozen=True)
class CountryCompleteness:
    country: str
    conference: str
    cells: list[Cell]
    expected: int
    reported: int
    on_time: int

    @property
    def reporting_rate(self) -> float | None:
        return 100 * self.reported / self.expected if self.expected else None

    @property
    def on_time_rate(self) -> float | None:
        return 100 * self.on_time / self.expected if self.expected else None


@dataclass(frozen=True)
class RuleLine:
    country: str
    rule_id: str
    severity: str
    submissions: int
    rows: int
    message_es: str
    message_en: str


@dataclass(frozen=True)
class Unmapped:
    country: str
    column: str
    value: str
    rows: int


@dataclass(frozen=True)
class Coverage:
    rows: int            # observations of the submissions for the month
    unmapped_rows: int   # of them, rows with a source value that did not map (R02)
    waiting: list[Unmapped]  # values that still map to nothing, most rows first

    @property
    def mapped_share(self) -> float | None:
        return 100 * (self.rows - self.unmapped_rows) / self.rows if self.rows else None


@dataclass(frozen=True)
class Alert:
    """A flow of the report's month beyond its usual range (Q02): one series, why it fired."""

    country: str
    flow_type: str
    route: str
    nationality: str | None   # None: the flow's persons of every nationality
    value: int
    low: int
    high: int
    reference: date           # the month the usual range starts from
    reference_value: int


@dataclass
class EarlyWarning:
    alerts: list[Alert]
    judged: int               # series judged in the month
    too_short: list[tuple[str, str, str, str | None]]  # series with fewer than MIN_MONTHS months before it


REVISION_NAMED_PERCENT = 5.0  # standard Q04: a revision above this share of a published figure is named


@dataclass(frozen=True)
class Revision:
    country: str
    period: date
    flow_type: str
    cell: str                 # the cell's other dimensions, as codes: "DARIEN · COL · _T · _T · VEN"
    previous: int | None
    count: int | None
    change_percent: float | None
    submission_id: int
    revised_at: datetime


@dataclass
class Revisions:
    since: datetime | None    # the previous report; None: every revision in the window
    slices: int               # country × period × flow type revised
    cells: int                # cells changed
    named: list[Revision]     # those above REVISION_NAMED_PERCENT (or a cell added or dropped)


@dataclass
class MonthlyFigures:
    period: date
    months: list[date]                       # the window, oldest first, ending at `period`
    completeness: list[CountryCompleteness]
    submissions: list[tuple]                 # the month's submissions: id, country, file, status, rows
    conformity: list[RuleLine]
    coverage: Coverage
    route_series: list[tuple[date, str, int]]      # (month, route, persons) over the window
    country_series: list[tuple[date, str, int]]    # (month, reporting country, persons)
    route_totals: dict[str, int] = field(default_factory=dict)  # the month's persons per route
    children: tuple[int, int] = (0, 0)       # the month's persons under 18, of persons with an age
    top_nationalities: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # route -> (code, persons)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # "es"/"en" -> code -> name
    warning: EarlyWarning = field(default_factory=lambda: EarlyWarning([], 0, []))
    revisions: Revisions = field(default_factory=lambda: Revisions(None, 0, 0, []))

    @property
    def expected(self) -> int:
        return sum(c.expected for c in self.completeness)

    @property
    def reporting_rate(self) -> float | None:
        return 100 * sum(c.reported for c in self.completeness) / self.expected if self.expected else None

    @property
    def on_time_rate(self) -> float | None:
        return 100 * sum(c.on_time for c in self.completeness) / self.expected if self.expected else None

    @property
    def persons(self) -> int:
        return sum(self.route_totals.values())

    @property
    def children_share(self) -> float | None:
        under_18, with_age = self.children
        return 100 * under_18 / with_age if with_age else None


def parse_period(text: str) -> date:
    try:
        year, month = text.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise NoReportableMonth(f"--period {text!r} is not a month written YYYY-MM") from None


def latest_period(con: duckdb.DuckDBPyConnection) -> date:
    """The latest month with accepted data: the report's month unless one is asked for."""
    found = con.execute("select max(period) from marts.fct_flows").fetchone()
    if not found or found[0] is None:
        raise NoReportableMonth("no month has accepted data yet: the report needs one accepted submission")
    return found[0]


def window(period: date, count: int = WINDOW_MONTHS) -> list[date]:
    return months_window(period, count)


def q01_state(status: str | None, late: bool | None, due: date, today: date) -> str:
    """A country-month's cell (Q01), as the report and the portal's calendar show it:
    on_time | late | rejected | missing | not_due (nothing accepted, and the due date not passed)."""
    if status == "accepted":
        return "late" if late else "on_time"
    if status == "rejected":
        return "rejected"
    return "missing" if due < today else "not_due"


def completeness(con: duckdb.DuckDBPyConnection, months: list[date], today: date) -> list[CountryCompleteness]:
    rows = con.execute(
        "select reporting_country, period, status, late, due_date from marts.fct_submission_status "
        "where period between ? and ?", [months[0], months[-1]]).fetchall()
    due_days = dict(con.execute(
        "select reporting_country, day(max(due_date)) from marts.fct_submission_status group by all").fetchall())
    known = {(country, period): (status, late, due) for country, period, status, late, due in rows}
    lines = []
    for country, conference in ISO3_MEMBERS.items():
        cells = []
        for period in months:
            status, late, due = known.get((country, period), (None, None, None))
            if due is None:  # a month the mart's grid does not reach (before anyone reported, or this month)
                due = shift(period, 1).replace(day=due_days.get(country, STANDARD_DUE_DAY))
            cells.append(Cell(period, q01_state(status, late, due, today)))
        expected = [c for c in cells if c.state != "not_due"]
        lines.append(CountryCompleteness(
            country, conference, cells, len(expected),
            sum(c.state in ("on_time", "late") for c in expected), sum(c.state == "on_time" for c in expected)))
    return lines


def month_submissions(con: duckdb.DuckDBPyConnection, period: date) -> list[tuple]:
    return con.execute(
        """
        select submissions.submission_id, submissions.reporting_country, submissions.file_name,
               submissions.status, periods.observations
        from marts.fct_submissions as submissions
        join marts.fct_submission_periods as periods using (submission_id)
        where periods.period = ?
        order by submissions.reporting_country, submissions.submission_id
        """, [period]).fetchall()


def conformity(con: duckdb.DuckDBPyConnection, period: date) -> list[RuleLine]:
    """Per country and rule: the month's submissions and rows that failed it."""
    rows = con.execute(
        """
        select failures.reporting_country, failures.rule_id, failures.severity,
               count(distinct failures.submission_id), count(*)
        from marts.fct_rule_failures as failures
        semi join (select submission_id from marts.fct_submission_periods where period = ?) as month
            using (submission_id)
        group by all
        order by 5 desc, 1, 2
        """, [period]).fetchall()
    return [RuleLine(country, rule, severity, submissions, failing, RULES_BY_ID[rule].message_es,
                     RULES_BY_ID[rule].message_en)
            for country, rule, severity, submissions, failing in rows]


def coverage(con: duckdb.DuckDBPyConnection, period: date) -> Coverage:
    """Q03: of the rows the month's submissions sent, how many carried a value that mapped to nothing."""
    found = con.execute(
        """
        with month as (select submission_id, observations from marts.fct_submission_periods where period = ?)
        select
            (select coalesce(sum(observations), 0) from month),
            (select count(distinct (submission_id, source_row)) from marts.fct_rule_failures
             semi join month using (submission_id) where rule_id = 'R02')
        """, [period]).fetchone()
    assert found is not None  # two scalar subqueries: one row
    waiting = [Unmapped(*row) for row in con.execute(
        "select reporting_country, column_name, value, rows from marts.fct_unmapped_values "
        "where maps_now_to is null order by rows desc, reporting_country, value").fetchall()]
    return Coverage(found[0], found[1], waiting)


# Persons are counted in one cross-section only, as the standard's §4 asks:
# by route from the rows per nationality (sex and age all), since the route
# needs the nationality; children from the rows per age (sex and nationality
# all), the finest bands under and over 18.
_BY_NATIONALITY = "sex = '_T' and age = '_T' and nationality <> '_T'"


def route_series(con: duckdb.DuckDBPyConnection, months: list[date]) -> list[tuple[date, str, int]]:
    return con.execute(
        f"select period, route, sum(count)::bigint from marts.fct_flows where {_BY_NATIONALITY} "
        "and period between ? and ? and count is not null group by all order by all",
        [months[0], months[-1]]).fetchall()


def country_series(con: duckdb.DuckDBPyConnection, months: list[date]) -> list[tuple[date, str, int]]:
    return con.execute(
        f"select period, reporting_country, sum(count)::bigint from marts.fct_flows where {_BY_NATIONALITY} "
        "and period between ? and ? and count is not null group by all order by all",
        [months[0], months[-1]]).fetchall()


def children(con: duckdb.DuckDBPyConnection, period: date) -> tuple[int, int]:
    """(persons under 18, persons of known age) in the month, from each slice's table by age.

    A slice's table by age is its rows for all nationalities: those for both
    sexes together where it has them, else those per sex; within it, the
    finest age bands given (a band beside a narrower one would count twice).
    """
    found = con.execute(
        """
        with aged as (
            select flows.reporting_country, flows.flow_type, flows.border_point, flows.counterpart_country,
                   flows.sex, flows.count, ages.path
            from marts.fct_flows as flows
            join marts.dim_age as ages on ages.code = flows.age
            where flows.nationality = '_T' and flows.age not in ('_T', '_U')
              and flows.period = ? and flows.count is not null
        ),
        one_table as (
            select * from aged
            qualify (sex = '_T') = bool_or(sex = '_T') over (
                partition by reporting_country, flow_type, border_point, counterpart_country)
        ),
        finest as (
            select * from one_table
            where not exists (
                select 1 from one_table as narrower
                where narrower.reporting_country = one_table.reporting_country
                  and narrower.flow_type = one_table.flow_type
                  and narrower.border_point = one_table.border_point
                  and narrower.counterpart_country = one_table.counterpart_country
                  and narrower.sex = one_table.sex
                  and narrower.path like one_table.path || '/%')
        )
        select coalesce(sum(count) filter (where path like '/_T/Y_LT18%'), 0)::bigint,
               coalesce(sum(count), 0)::bigint
        from finest
        """, [period]).fetchone()
    assert found is not None  # an aggregate without group by: one row
    return found[0], found[1]


def top_nationalities(con: duckdb.DuckDBPyConnection, period: date) -> dict[str, list[tuple[str, int]]]:
    rows = con.execute(
        f"""
        select route, nationality, sum(count)::bigint as persons
        from marts.fct_flows
        where {_BY_NATIONALITY} and period = ? and count is not null
        group by route, nationality
        qualify row_number() over (partition by route order by persons desc, nationality) <= {TOP_NATIONALITIES}
        order by route, persons desc, nationality
        """, [period]).fetchall()
    top: dict[str, list[tuple[str, int]]] = {}
    for route, nationality, persons in rows:
        top.setdefault(route, []).append((nationality, persons))
    return top


def early_warning(con: duckdb.DuckDBPyConnection, period: date) -> EarlyWarning:
    """Q02 on the month: each flow (country × flow type × route), and each of its top nationalities."""
    flows = con.execute(
        f"select reporting_country, flow_type, route, period, sum(count)::bigint from marts.fct_flows "
        f"where {_BY_NATIONALITY} and period <= ? and count is not null group by all", [period]).fetchall()
    by_nationality = con.execute(
        f"""
        with month as (
            select reporting_country, flow_type, route, nationality, sum(count) as persons
            from marts.fct_flows where {_BY_NATIONALITY} and period = ? and count is not null
            group by reporting_country, flow_type, route, nationality
            qualify row_number() over (partition by reporting_country, flow_type, route
                                       order by persons desc, nationality) <= {TOP_NATIONALITIES}
        )
        select flows.reporting_country, flows.flow_type, flows.route, flows.nationality, flows.period,
               sum(flows.count)::bigint
        from marts.fct_flows as flows
        semi join month using (reporting_country, flow_type, route, nationality)
        where flows.sex = '_T' and flows.age = '_T' and flows.period <= ? and flows.count is not null
        group by all
        """, [period, period]).fetchall()
    series: dict[tuple[str, str, str, str | None], dict[date, int]] = {}
    for country, flow_type, route, month, persons in flows:
        series.setdefault((country, flow_type, route, None), {})[month] = persons
    for country, flow_type, route, nationality, month, persons in by_nationality:
        series.setdefault((country, flow_type, route, nationality), {})[month] = persons
    alerts, too_short, judged = [], [], 0
    for key in sorted(series, key=lambda k: (k[0], k[1], k[2], k[3] or "")):
        values = series[key]
        if period not in values:
            continue
        if sum(1 for month in values if month < period) < MIN_MONTHS:
            too_short.append(key)
            continue
        judged += 1
        judgement = judge_series(values, until=period)[-1]
        if judgement.alert and judgement.reference is not None:
            assert judgement.low is not None and judgement.high is not None  # judged, not too short
            alerts.append(Alert(*key, judgement.value, judgement.low, judgement.high, judgement.reference,
                                values[judgement.reference]))
    return EarlyWarning(alerts, judged, too_short)


def revisions(con: duckdb.DuckDBPyConnection, months: list[date], since: datetime | None) -> Revisions:
    """Q04: cells of the window's months that accepted submissions changed since the previous report."""
    rows = con.execute(
        """
        select reporting_country, period, flow_type,
               concat_ws(' · ', border_point, counterpart_country, sex, age, nationality),
               previous_count, count, change_percent, submission_id, revised_at
        from marts.fct_revisions
        where period between ? and ? and (?::timestamptz is null or revised_at > ?::timestamptz)
        order by abs(coalesce(change_percent, 1e9)) desc, reporting_country, period, flow_type
        """, [months[0], months[-1], since, since]).fetchall()
    changed = [Revision(*row) for row in rows]
    named = [r for r in changed if r.change_percent is None or abs(r.change_percent) > REVISION_NAMED_PERCENT]
    return Revisions(since, len({(r.country, r.period, r.flow_type) for r in changed}), len(changed), named)


def labels(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Names of routes, nationalities, countries and flow types in each language, from the marts' code lists."""
    rows = con.execute("select code, label_es, label_en from marts.dim_route union all "
                       "select code, label_es, label_en from marts.dim_flow_type union all "
                       "select nationality_code, label_es, label_en from marts.dim_nationality").fetchall()
    return {"es": {code: es for code, es, _ in rows}, "en": {code: en for code, _, en in rows}}


def gather(con: duckdb.DuckDBPyConnection, period: date | None = None, today: date | None = None,
           previous_report: datetime | None = None) -> MonthlyFigures:
    """`previous_report`: when the report before this one was written, which revisions are news since."""
    period = period or latest_period(con)
    months = window(period)
    routes = route_series(con, months)
    return MonthlyFigures(
        period=period,
        months=months,
        completeness=completeness(con, months, today or date.today()),
        submissions=month_submissions(con, period),
        conformity=conformity(con, period),
        coverage=coverage(con, period),
        route_series=routes,
        country_series=country_series(con, months),
        route_totals={route: persons for month, route, persons in routes if month == period},
        children=children(con, period),
        top_nationalities=top_nationalities(con, period),
        labels=labels(con),
        warning=early_warning(con, period),
        revisions=revisions(con, months, previous_report),
    )
