"""End to end: real DuckDB, dbt, Great Expectations and Prefect on small files."""
from __future__ import annotations

import contextlib
import errno
import inspect
import json
import logging
import smtplib
import subprocess
import sys

import duckdb
import pytest

from conftest import STANDARD_HEADER, drop, drop_sample
from flows.pipeline import hmo_run
from flows.retries import DUCKDB_LOCK, is_transient, retry_when_transient
from flows.stages import NothingToReport
from hmo.errors import HmoError, WarehouseBusy
from hmo.warehouse import connect
from report.mail import MailFailed


def query(paths, sql):
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def receipt(paths, country, status):
    [path] = (paths.outbox / country).glob(f"*.{status}.json")
    return json.loads(path.read_text(encoding="utf-8"))


MARGINALS = "\n".join(
    [STANDARD_HEADER]
    + [f"PAN,2024-03,IRREGULAR_TRANSIT,DARIEN,COL,_T,_T,{nat},{n},A" for nat, n in (("VEN", 70), ("HTI", 20), ("_O", 10))]
    + [f"PAN,2024-03,IRREGULAR_TRANSIT,DARIEN,COL,{sex},{age},_T,{n},A"
       for sex, age, n in (("F", "Y_LT18", 15), ("F", "Y_GE18", 30), ("M", "Y_LT18", 20), ("M", "Y_GE18", 36))]
) + "\n"


@pytest.fixture(scope="module")
def first_run(prefect_server, tmp_path_factory):
    from hmo.settings import Paths

    paths = Paths(tmp_path_factory.mktemp("e2e") / "data")
    paths.ensure()
    for country in ("MEX", "GTM", "PAN"):
        drop_sample(paths, country)
    drop(paths, "PAN", "marginales_2024_03.csv", MARGINALS)
    summary = hmo_run(str(paths.root))
    return paths, summary


def test_spanish_latin1_semicolon_file_is_accepted_with_harmonised_codes(first_run):
    paths, summary = first_run
    verdicts = {v.file_name: v.status for v in summary.verdicts}
    assert verdicts["eventos_enero_2024.csv"] == "accepted"
    rows = query(paths, """
        select nationality, sum(count), any_value(route), any_value(origin_scope)
        from marts.fct_flows
        where reporting_country = 'MEX' and sex = '_T' and age = '_T'
        group by nationality order by nationality""")
    assert rows == [
        ("GTM", 230, "NORTH_BOUND", "INTRA_REGIONAL"),
        ("HND", 500, "NORTH_BOUND", "INTRA_REGIONAL"),
        ("HTI", 330, "NORTH_BOUND", "EXTRA_REGIONAL"),
        ("PER", 45, "NORTH_BOUND", "EXTRA_REGIONAL"),
        ("VEN", 920, "NORTH_BOUND", "EXTRA_REGIONAL"),
    ]
    assert receipt(paths, "MEX", "accepted")["periods"] == ["2024-01"]


def test_broken_file_is_rejected_with_every_problem_and_reaches_no_table(first_run):
    paths, summary = first_run
    problems = {(p["rule"], p["row"], p["column"], p["value"]) for p in receipt(paths, "GTM", "rejected")["problems"]}
    assert ("R03", 3, "count", "-5") in problems
    assert ("R02", 4, "nationality", "Narnia") in problems
    assert ("R04", 5, "key", None) in problems
    text = next((paths.outbox / "GTM").glob("*.rejected.txt")).read_text(encoding="utf-8")
    assert "RECHAZADO / REJECTED" in text and "ES: " in text and "EN: " in text
    assert query(paths, "select count(*) from marts.fct_flows where reporting_country = 'GTM'") == [(0,)]
    # What validation copied to check is gone; the failures stay in validation.rule_failures.
    assert query(paths, "select table_name from information_schema.tables where table_name like 'validation%'") == []
    assert query(paths, "select count(*) from validation.rule_failures f join raw.submissions s using (submission_id) "
                        "where s.reporting_country = 'GTM'") == [(3,)]


def test_marginal_tables_load_without_double_counting(first_run):
    paths, _ = first_run
    [(by_nationality, by_sex_age)] = query(paths, """
        select sum(count) filter (where sex = '_T' and age = '_T' and nationality <> '_T'),
               sum(count) filter (where nationality = '_T')
        from marts.fct_flows where reporting_country = 'PAN' and period = date '2024-03-01'""")
    assert by_nationality == 100
    assert by_sex_age == 101


def test_analysts_read_every_country_at_the_common_level_with_each_figure_from_one_table(first_run):
    paths, _ = first_run
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        figures = dict(((breakdown, age_group), (count, cross_section)) for breakdown, age_group, count, cross_section in con.execute("""
            select breakdown, age_group, count, cross_section from marts.fct_flows_comparable
            where reporting_country = 'PAN' and period = date '2024-03-01'
              and breakdown in ('TOTAL', 'AGE_GROUP')""").fetchall())
        [(slices, totals)] = con.execute("""
            select count(distinct (reporting_country, period, flow_type)), count(*)
            from marts.fct_flows_comparable where breakdown = 'TOTAL'""").fetchall()
    finally:
        con.close()
    # The total is the nationality table's 100, not it added to the sex-by-age table's 101.
    assert figures[("TOTAL", "_T")] == (100, "nationality × border_point × counterpart_country")
    assert figures[("AGE_GROUP", "Y_LT18")] == (35, "sex × age × border_point × counterpart_country")
    assert figures[("AGE_GROUP", "Y_GE18")][0] == 66
    assert slices == totals  # one total per slice, whichever tables the country sent


def test_disagreeing_cross_sections_warn_with_c02_but_are_accepted(first_run):
    paths, summary = first_run
    verdict = next(v for v in summary.verdicts if v.file_name == "marginales_2024_03.csv")
    assert verdict.status == "accepted" and verdict.rules_failed == ["C02"]
    data = json.loads(next((paths.outbox / "PAN").glob("marginales*.json")).read_text(encoding="utf-8"))
    assert {p["value"] for p in data["problems"]} == {"100", "101"}


def test_same_file_twice_is_one_submission_and_a_revision_replaces_figures(first_run):
    from harmonise.dbt import DbtProject

    paths, _ = first_run
    # Nothing in the dbt project changed since the first run: the seeds, views and
    # dimensions are not rebuilt, only the facts move.
    assert DbtProject(paths).prepare_validation() is False
    drop_sample(paths, "MEX")
    revised = (
        "pais_reporte;periodo;tipo_flujo;punto_fronterizo;pais_contraparte;sexo;edad;nacionalidad;cantidad\n"
        "MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;_T;_T;Honduras;777\n"
    )
    drop(paths, "MEX", "eventos_enero_2024_revisado.csv", revised.encode("cp1252"))
    summary = hmo_run(str(paths.root))

    duplicates = [r for r in summary.ingested.received if r.duplicate_of]
    assert len(duplicates) == 1
    assert query(paths, "select count(*) from raw.submissions where reporting_country = 'MEX'") == [(2,)]
    assert receipt(paths, "MEX", "duplicate")["duplicate_of"] == duplicates[0].duplicate_of
    assert query(paths, "select nationality, count from marts.fct_flows where reporting_country = 'MEX'") == [("HND", 777)]
    assert DbtProject(paths).build_marts() is False
    # The earlier version stays in the raw layer.
    assert query(paths, "select count(*) from raw.observations o join raw.submissions s using (submission_id) "
                        "where s.file_name = 'eventos_enero_2024.csv'") == [(15,)]


def test_report_and_status_table_show_who_submitted(first_run):
    from datetime import date

    from flows.stages import write_reports

    paths, summary = first_run
    assert summary.report == paths.reports / "2024-03" / "report.es.html"  # the latest month accepted
    [january] = write_reports(paths, date(2024, 1, 1), ("en",), pdf=False)
    html = january.html.read_text(encoding="utf-8")
    assert 'id="q01-GTM"' in html and "R03" in html
    statuses = dict(((c, s) for c, s in query(paths, """
        select reporting_country, status from marts.fct_submission_status where period = date '2024-01-01'""")))
    assert statuses["MEX"] == "accepted" and statuses["GTM"] == "rejected" and statuses["ARG"] == "missing"


# -- retries: a transient failure is tried again, an error about the input is not (flows/retries.py) ----------

class _Lines(logging.Handler):
    """The task runs' log lines, as Prefect's run logger emits them; `on` sees each as it comes."""

    def __init__(self, on=None):
        super().__init__()
        self.messages: list[str] = []
        self._on = on

    def emit(self, record):
        self.messages.append(record.getMessage())
        if self._on:
            self._on(record.getMessage())


@contextlib.contextmanager
def task_run_lines(on=None):
    logger = logging.getLogger("prefect.task_runs")
    handler, level = _Lines(on), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.contextmanager
def lock_held_elsewhere(warehouse):
    """Another process opens the warehouse for writing (DuckDB's file lock) until told to close it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
                               "sys.stdin.read()", str(warehouse)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def release():
        if holder.poll() is None:
            holder.stdin.close()
            holder.wait(timeout=30)

    try:
        assert holder.stdout.readline() == "held\n"
        yield release
    finally:
        release()


def test_a_stage_is_tried_again_while_another_process_holds_the_warehouse(prefect_server, paths):
    connect(paths.warehouse).close()
    with lock_held_elsewhere(paths.warehouse) as release:
        # The lock goes as soon as the first try has failed on it and the task is to be tried again.
        with task_run_lines(on=lambda line: "trying again" in line and release()) as lines:
            summary = hmo_run(str(paths.root), only=("ingest",))

    retried = [line for line in lines if "trying again" in line]
    assert len(retried) == 1, lines
    assert "is in use by another process" in retried[0] and DUCKDB_LOCK in retried[0]
    assert "trying again in 1 s (attempt 2 of 4)" in retried[0]
    assert "ingest: attempt 2 of 4" in lines
    assert "ingest: no new files in the inbox" in lines and summary.ingested.received == []


def test_an_error_about_the_input_is_not_tried_again(prefect_server, paths):
    connect(paths.warehouse).close()  # a warehouse, but no build has made its marts: nothing to report

    with task_run_lines() as lines:
        state = hmo_run(str(paths.root), only=("report",), return_state=True)

    assert state.is_failed()
    with pytest.raises(NothingToReport):
        state.result()
    assert not [line for line in lines if "attempt" in line or "trying again" in line], lines


def test_only_a_lock_held_elsewhere_or_an_os_error_that_says_try_again_is_transient(paths):
    from harmonise.dbt import BuildFailed, DbtProject, TestsFailed

    connect(paths.warehouse).close()
    with lock_held_elsewhere(paths.warehouse):
        with pytest.raises(WarehouseBusy) as busy:
            connect(paths.warehouse)
        with pytest.raises(BuildFailed) as dbt_busy:  # dbt opening the warehouse itself
            DbtProject(paths).build("facts")
    assert DUCKDB_LOCK in str(dbt_busy.value)
    assert is_transient(busy.value) and is_transient(dbt_busy.value)
    assert is_transient(OSError(errno.EBUSY, "Device or resource busy"))
    assert is_transient(BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable"))
    # The mail server of the monthly report, unreachable or saying "try later" (report.mail wraps its errors).
    for cause in (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), TimeoutError("timed out"),
                  smtplib.SMTPServerDisconnected("closed"), smtplib.SMTPResponseException(451, b"try later")):
        wrapped = MailFailed(f"the report was not mailed: {cause}")
        wrapped.__cause__ = cause
        assert is_transient(wrapped), cause
    refused = MailFailed("the report was not mailed: 550 no such user")
    refused.__cause__ = smtplib.SMTPRecipientsRefused({"ppt@example.org": (550, b"no such user")})
    assert not is_transient(refused)
    assert not is_transient(smtplib.SMTPAuthenticationError(535, b"bad credentials"))

    # Errors that say what a person must fix, and failures that would fail the same way again.
    assert not is_transient(NothingToReport("the harmonised tables are not built yet"))
    assert not is_transient(WarehouseBusy(f"no warehouse at {paths.warehouse}: run `hmo run` first"))
    assert not is_transient(BuildFailed("dbt build --selector facts failed: fct_flows: error Binder Error"))
    assert not is_transient(TestsFailed("dbt build --selector facts failed: not_null_fct_flows_count: fail", []))
    assert not is_transient(FileNotFoundError(errno.ENOENT, "No such file or directory"))
    assert not is_transient(PermissionError(errno.EACCES, "Permission denied"))
    # A lock mentioned in an error's words, not in its cause, is not one.
    assert not is_transient(HmoError(f"{DUCKDB_LOCK} (quoted from a receipt)"))
    # Prefect calls a retry condition only if it is a plain function (else: never retry).
    assert inspect.isfunction(retry_when_transient)
