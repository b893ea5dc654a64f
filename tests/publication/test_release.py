"""The embargo: nothing of a month is published before its release date; the analysts' marts have it at once."""
from __future__ import annotations

import csv
from datetime import date

import duckdb

from conftest import STANDARD_HEADER, drop
from flows import stages
from hmo.settings import PROJECT_ROOT


def test_this_months_figures_wait_for_their_release_date_and_last_years_are_published(paths):
    today = date.today()
    this_month = f"{today:%Y-%m}"
    next_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    drop(paths, "PAN", "entradas.csv", STANDARD_HEADER + "".join(
        f"\nPAN,{period},ENTRY,_T,_T,_T,_T,{nationality},{count},A"
        for period in (this_month, "2024-01") for nationality, count in (("VEN", 120), ("COL", 80))))
    summary = stages.run(paths)
    assert summary.failure is None and [v.status for v in summary.verdicts] == ["accepted"]
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        analysts = con.execute("select distinct strftime(period, '%Y-%m') from marts.fct_flows order by 1").fetchall()
        public = con.execute("select distinct strftime(period, '%Y-%m') from publication.pub_flows").fetchall()
        calendar = dict(con.execute("select strftime(period, '%Y-%m'), release_date from publication.pub_release_calendar"
                                    ).fetchall())
    finally:
        con.close()
    assert analysts == [("2024-01",), (this_month,)]
    assert public == [("2024-01",)]
    with (PROJECT_ROOT / "dbt_project" / "seeds" / "release_calendar.csv").open(encoding="utf-8") as seed:
        exceptions = {row["period"][:7]: date.fromisoformat(row["release_date"]) for row in csv.DictReader(seed)}
    assert calendar[this_month] == exceptions.get(this_month, next_month.replace(day=25))


def test_a_revision_of_a_released_month_is_published_at_the_next_run(paths):
    drop(paths, "PAN", "enero.csv", STANDARD_HEADER + "\nPAN,2024-01,ENTRY,_T,_T,_T,_T,VEN,120,A"
                                                       "\nPAN,2024-01,ENTRY,_T,_T,_T,_T,COL,80,A")
    stages.run(paths)
    drop(paths, "PAN", "enero-revisado.csv", STANDARD_HEADER + "\nPAN,2024-01,ENTRY,_T,_T,_T,_T,VEN,150,A"
                                                                "\nPAN,2024-01,ENTRY,_T,_T,_T,_T,COL,3,A")
    stages.run(paths)
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        public = dict(con.execute("select nationality, coalesce(count::varchar, obs_status) "
                                  "from publication.pub_flows").fetchall())
    finally:
        con.close()
    assert public == {"VEN": "150", "COL": "Q"}  # the revision's figures, its small count hidden
