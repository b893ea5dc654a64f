"""The portal's calendar: what is due next and by when, from the published fct_submission_status."""
from datetime import date

import duckdb

from hmo.settings import Paths
from portal.calendar import country_calendar


def publish_status(paths: Paths, rows: list[tuple[str, str, str, str, bool]]) -> None:
    """A published copy holding fct_submission_status as a build writes it (country, period, due, status, late)."""
    paths.published.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(paths.published))
    con.execute("create schema marts")
    con.execute("create table marts.fct_submission_status (reporting_country varchar, period date, due_date date, "
                "status varchar, late boolean)")
    con.executemany("insert into marts.fct_submission_status values (?, ?, ?, ?, ?)", rows)
    con.close()


def test_the_next_month_is_due_on_the_countrys_own_day(tmp_path):
    paths = Paths(tmp_path)
    publish_status(paths, [("GTM", "2026-10-01", "2026-11-05", "accepted", False),
                           ("GTM", "2026-11-01", "2026-12-05", "missing", False),
                           ("PAN", "2026-11-01", "2026-12-15", "missing", False)])

    before = country_calendar(paths, "GTM", today=date(2026, 12, 2))
    assert (before.next_period, before.next_due) == (date(2026, 11, 1), date(2026, 12, 5))
    after = country_calendar(paths, "GTM", today=date(2026, 12, 6))  # November's day has passed: it is missing
    assert (after.next_period, after.next_due) == (date(2026, 12, 1), date(2027, 1, 5))
    assert [m.state for m in dict(after.years)[2026] if m] == ["on_time", "missing"]
    assert country_calendar(paths, "PAN", today=date(2026, 12, 6)).next_due == date(2026, 12, 15)


def test_before_anything_is_published_the_standards_day_applies(tmp_path):
    calendar = country_calendar(Paths(tmp_path), "GTM", today=date(2026, 12, 2))
    assert (calendar.next_period, calendar.next_due) == (date(2026, 11, 1), date(2026, 12, 15))
