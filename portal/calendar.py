"""A country's reporting calendar (standard Q01), as last published: each month accepted on time, late,
rejected or missing, and the month due next with its date.

It reads `marts.fct_submission_status` from the published copy (flows.query,
read-only, never waiting for a run), so the portal shows what the report
and analysts see. The due dates are the mart's, from the seed
reporting_deadlines: each country's own day of the next month.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from flows import query
from hmo.months import shift, window
from hmo.settings import Paths
from report.figures import STANDARD_DUE_DAY, q01_state


@dataclass(frozen=True)
class Month:
    period: date
    state: str          # report.figures.q01_state: on_time | late | rejected | missing | not_due
    due_date: date


@dataclass(frozen=True)
class Calendar:
    years: list[tuple[int, list[Month | None]]]   # each year's twelve months, None outside the grid
    next_period: date
    next_due: date
    due_day: int                                   # of the month after the one due


@dataclass(frozen=True)
class CountryLine:
    """One line of the staff's overview: a country's last twelve months and its next due date."""

    country: str
    recent: list[Month | None]
    next_period: date
    next_due: date


def _published_status(paths: Paths, country: str | None) -> list[tuple]:
    """(country, period, status, late, due_date) as last published, by country and period."""
    where, params = ("where reporting_country = ? ", [country]) if country else ("", [])
    try:
        return query.run(paths, "select reporting_country, period, status, late, due_date "
                                f"from fct_submission_status {where}order by all", params).rows
    except (query.QueryRefused, duckdb.CatalogException):
        return []  # nothing published yet, or no build made the marts


def _calendar(rows: list[tuple], today: date) -> Calendar:
    months = {period: Month(period, q01_state(status, bool(late), due, today), due)
              for _, period, status, late, due in rows}
    last_month = shift(today.replace(day=1), -1)
    # Every month of a country has the same due day; before anything is published, the standard's (Q01).
    due_day = rows[-1][4].day if rows else STANDARD_DUE_DAY
    # Next due: last month if it is not in yet and its date has not passed, else this month.
    last = months.get(last_month)
    last_in = last is not None and last.state in ("on_time", "late")
    if not last_in and shift(last_month, 1).replace(day=due_day) >= today:
        next_period = last_month
    else:
        next_period = shift(last_month, 1)
    next_due = shift(next_period, 1).replace(day=due_day)
    years = sorted({period.year for period in months} | {next_period.year})
    return Calendar([(year, [months.get(date(year, m, 1)) for m in range(1, 13)]) for year in years],
                    next_period, next_due, due_day)


def country_calendar(paths: Paths, country: str, today: date | None = None) -> Calendar:
    return _calendar(_published_status(paths, country), today or date.today())


def recent_months(today: date | None = None, count: int = 12) -> list[date]:
    """The `count` months up to last month, oldest first: the columns of the overview."""
    return window(shift((today or date.today()).replace(day=1), -1), count)


def overview(paths: Paths, countries: list[str], today: date | None = None) -> list[CountryLine]:
    """Every country's last twelve months and next due date, from one read of the published mart."""
    today = today or date.today()
    by_country: dict[str, list[tuple]] = {country: [] for country in countries}
    for row in _published_status(paths, None):
        by_country.setdefault(row[0], []).append(row)
    columns = recent_months(today)
    lines = []
    for country in countries:
        calendar = _calendar(by_country[country], today)
        months = {m.period: m for _, cells in calendar.years for m in cells if m}
        lines.append(CountryLine(country, [months.get(period) for period in columns],
                                 calendar.next_period, calendar.next_due))
    return lines
