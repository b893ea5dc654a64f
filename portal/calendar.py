"""A country's reporting calendar (standard Q01), as last published: each month accepted on time, late,
rejected or missing, and the month due next with its date.

It reads `marts.fct_submission_status` from the published copy (flows.query,
read-only, never waiting for a run), so the portal shows what the report
and analysts see. The due date is the mart's: the 15th of the next month.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from flows import query
from hmo.settings import Paths


@dataclass(frozen=True)
class Month:
    period: date
    state: str          # on_time | late | rejected | missing | pending (due date not yet reached)
    due_date: date


@dataclass(frozen=True)
class Calendar:
    years: list[tuple[int, list[Month | None]]]   # each year's twelve months, None outside the grid
    next_period: date
    next_due: date


def _state(status: str, late: bool, due: date, today: date) -> str:
    if status == "accepted":
        return "late" if late else "on_time"
    if status == "rejected":
        return "rejected"
    return "missing" if due < today else "pending"


def _month_after(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def country_calendar(paths: Paths, country: str, today: date | None = None) -> Calendar:
    today = today or date.today()
    try:
        answer = query.run(paths, "select period, status, late, due_date from fct_submission_status "
                                  "where reporting_country = ? order by period", [country])
        rows = answer.rows
    except (query.QueryRefused, duckdb.CatalogException):
        rows = []  # nothing published yet, or no build made the marts
    months = {period: Month(period, _state(status, bool(late), due, today), due) for period, status, late, due in rows}
    last_month = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
    # Next due: last month if it is not in yet and its date has not passed, else this month.
    last = months.get(last_month)
    if last is not None and last.state in ("missing", "pending", "rejected") and last.due_date >= today:
        next_period = last_month
    else:
        next_period = _month_after(last_month)
    next_due = _month_after(next_period).replace(day=15)
    years = sorted({period.year for period in months} | {next_period.year})
    return Calendar([(year, [months.get(date(year, m, 1)) for m in range(1, 13)]) for year in years],
                    next_period, next_due)
