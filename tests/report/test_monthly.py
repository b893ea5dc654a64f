"""The monthly report, built by the real pipeline from fixture submissions that cover every cell state.

Its figures are checked against what the fixture files say and the scenario
makes true (which months were sent, when), never against the report's own
queries. Months are placed relative to today: L is last month, M six months
before it, both inside the 24-month window of the report for L.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone

import duckdb
import pytest

from conftest import SAMPLES, drop, parsed
from flows import stages
from flows.writer import writer_lock
from hmo.settings import ISO3_MEMBERS, Paths
from report import figures
from report.figures import NoReportableMonth, parse_period, window

TODAY = date.today()
FIRST_OF_THIS_MONTH = TODAY.replace(day=1)
L = date(TODAY.year - (TODAY.month == 1), (TODAY.month - 2) % 12 + 1, 1)
M = window(L, 6)[0]
HEADER = "reporting_country,period,flow_type,border_point,counterpart_country,sex,age,nationality,count,obs_status\n"
# PAN in month L: by nationality (four from the Americas, one from Asia) and by sex and age.
PAN_ROWS = [("VEN", 10000), ("ECU", 300), ("HTI", 200), ("CHN", 100)]
PAN_AGES = [("F", "Y_LT18", 297), ("F", "Y_GE18", 396), ("M", "Y_LT18", 346), ("M", "Y_GE18", 611)]


# COL: 30 months of entries of Venezuelans, about 1,000 a month, then 3,000 in month L.
COL_HISTORY = {m: 1000 + 20 * (i % 3) for i, m in enumerate(window(L, 30)[:-1])}
COL_SPIKE = 3000


def _col_file() -> str:
    rows = {**COL_HISTORY, L: COL_SPIKE}
    return HEADER + "".join(f"COL,{m:%Y-%m},ENTRY,_T,VEN,_T,_T,VEN,{n},A\n" for m, n in rows.items())


def _pan_file(period: date) -> str:
    p = period.strftime("%Y-%m")
    return HEADER + "".join(f"PAN,{p},IRREGULAR_TRANSIT,DARIEN,COL,_T,_T,{nat},{n},A\n" for nat, n in PAN_ROWS) + \
        "".join(f"PAN,{p},IRREGULAR_TRANSIT,DARIEN,COL,{sex},{age},_T,{n},A\n" for sex, age, n in PAN_AGES)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    paths = Paths(tmp_path_factory.mktemp("report") / "data")
    paths.ensure()
    m = M.strftime("%Y-%m")
    drop(paths, "PAN", "transitos.csv", _pan_file(L))
    drop(paths, "MEX", "eventos.csv", HEADER + f"MEX,{m},ENCOUNTER,TAPACHULA,GTM,_T,_T,HND,500,A\n")
    drop(paths, "CRI", "entradas.csv", HEADER + f"CRI,{m},ENTRY,_T,NIC,_T,_T,NIC,5400,A\n")
    drop(paths, "COL", "entradas_30_meses.csv", _col_file())
    bad = next((SAMPLES / "GTM").iterdir()).read_text(encoding="utf-8").replace("2024-01", m)
    drop(paths, "GTM", "retornos.csv", bad)  # its errors reject it (R02, R03, R04)
    summary = stages.run(paths)
    verdicts = {v.country: v.status for v in summary.verdicts}
    assert verdicts == {"PAN": "accepted", "MEX": "accepted", "CRI": "accepted", "COL": "accepted",
                        "GTM": "rejected"}, verdicts
    # MEX's month was accepted back then, before its due date: the verdict's time says so.
    con = duckdb.connect(str(paths.warehouse))
    con.execute("update validation.verdicts set decided_at = ? where submission_id = "
                "(select submission_id from raw.submissions where reporting_country = 'MEX')",
                [datetime(M.year + M.month // 12, M.month % 12 + 1, 10, tzinfo=timezone.utc)])
    con.close()
    # MEX then revises its month: 500 encounters become 560 (+12 %, above Q04's 5 %).
    drop(paths, "MEX", "eventos_revisado.csv", HEADER + f"MEX,{m},ENCOUNTER,TAPACHULA,GTM,_T,_T,HND,560,A\n")
    stages.run(paths)
    return paths, summary


def _figures(paths: Paths) -> figures.MonthlyFigures:
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        return figures.gather(con, L, today=FIRST_OF_THIS_MONTH)
    finally:
        con.close()


def test_the_run_writes_the_latest_months_report_in_both_languages(site):
    paths, summary = site
    folder = paths.reports / L.strftime("%Y-%m")
    assert summary.report == folder / "report.es.html"
    assert not list(folder.glob("*.pdf"))  # PDFs are `hmo report`'s (and the schedule's): 1.2 s a run saved
    for name in ("report.es.html", "report.en.html"):
        assert (folder / name).stat().st_size > 1000, name
    headline = json.loads((folder / "figures.json").read_text(encoding="utf-8"))
    assert headline["period"] == L.strftime("%Y-%m") and headline["persons"] == sum(n for _, n in PAN_ROWS) + COL_SPIKE
    assert not list(folder.glob(".*partial"))


def test_every_cell_state_and_the_reporting_rates(site):
    paths, _ = site
    f = _figures(paths)
    assert f.months == window(L) and len(f.months) == 24
    cells = {(line.country, cell.period): cell.state for line in f.completeness for cell in line.cells}
    pan_on_time = TODAY <= date(TODAY.year, TODAY.month, 15)  # PAN's month L was accepted today
    assert cells["PAN", L] == ("on_time" if pan_on_time else "late")
    assert cells["MEX", M] == "on_time"
    assert cells["CRI", M] == "late"
    assert cells["GTM", M] == "rejected"
    assert cells["ARG", M] == "missing"
    assert cells["ARG", L] == "not_due"  # due on the 15th, after the report's "today"
    assert cells["COL", L] == cells["PAN", L] and {cells["COL", m] for m in f.months[:-1]} == {"late"}

    # DHIS2's rates: months due are each member's 23 months before L, and PAN's and COL's L, which they sent.
    expected = len(ISO3_MEMBERS) * 23 + 2
    assert f.expected == expected
    assert f.reporting_rate == pytest.approx(100 * (3 + 24) / expected)
    assert f.on_time_rate == pytest.approx(100 * (1 + 2 * pan_on_time) / expected)
    mex = next(line for line in f.completeness if line.country == "MEX")
    assert (mex.expected, mex.reported, mex.on_time) == (23, 1, 1)


def test_headline_figures_are_the_files_own(site):
    paths, _ = site
    f = _figures(paths)
    assert f.persons == sum(n for _, n in PAN_ROWS) + COL_SPIKE
    assert f.route_totals["EXTRACONTINENTAL"] == 100 and sum(f.route_totals.values()) == f.persons
    under_18 = sum(n for _, age, n in PAN_AGES if age == "Y_LT18")
    assert f.children == (under_18, sum(n for *_, n in PAN_AGES))
    assert f.top_nationalities["EXTRACONTINENTAL"] == [("CHN", 100)]
    venezuelans = max(f.top_nationalities[route][0] for route in f.top_nationalities if route != "EXTRACONTINENTAL")
    assert venezuelans[0] == "VEN"


def test_the_early_warning_names_the_flow_that_jumped_and_says_which_series_are_too_short(site):
    paths, _ = site
    f = _figures(paths)
    alerts = {(a.country, a.nationality): a for a in f.warning.alerts}
    assert set(alerts) == {("COL", None), ("COL", "VEN")}  # the flow, and its nationality
    alert = alerts["COL", None]
    before = window(L, 2)[0]
    assert (alert.value, alert.reference, alert.reference_value) == (COL_SPIKE, before, COL_HISTORY[before])
    assert alert.high < COL_SPIKE and alert.low <= 1000 <= alert.high
    assert ("PAN", "IRREGULAR_TRANSIT", "NORTH_BOUND", None) in f.warning.too_short  # one month: nothing to judge by
    english = (paths.reports / L.strftime("%Y-%m") / "report.en.html").read_text(encoding="utf-8")
    assert f"Colombia, regular entries at official crossing points, unknown: 3,000 in {L:%B %Y}; usual range " \
        in english


def test_conformity_and_coverage_of_the_month(site):
    paths, _ = site
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        f = figures.gather(con, M, today=FIRST_OF_THIS_MONTH)
    finally:
        con.close()
    failed = {(line.country, line.rule_id) for line in f.conformity}
    assert {("GTM", "R02"), ("GTM", "R03"), ("GTM", "R04")} <= failed
    assert {country for country, _ in failed} == {"GTM"}
    sent = {row[1]: row[3] for row in f.submissions}
    assert sent == {"MEX": "accepted", "CRI": "accepted", "COL": "accepted", "GTM": "rejected"}
    gtm_rows = len(next((SAMPLES / "GTM").iterdir()).read_text(encoding="utf-8").splitlines()) - 1
    assert f.coverage.rows == 4 + gtm_rows  # MEX sent the month twice
    assert 0 < f.coverage.unmapped_rows < gtm_rows


def test_a_revision_above_5_percent_is_named_and_only_revisions_since_the_previous_report_count(site):
    paths, _ = site
    f = _figures(paths)
    assert f.revisions.since is None  # no report of the month before L: every revision of the window
    [revision] = f.revisions.named
    assert (revision.country, revision.period, revision.previous, revision.count) == ("MEX", M, 500, 560)
    assert revision.change_percent == pytest.approx(12.0) and revision.cell.endswith("HND")
    assert (f.revisions.slices, f.revisions.cells) == (1, 1)
    spanish = (paths.reports / L.strftime("%Y-%m") / "report.es.html").read_text(encoding="utf-8")
    assert re.search(r"<td>México</td><td>" + M.strftime("%Y-%m") + r"</td>.*?12,0 %", spanish, re.S)

    # Once the report of the month before was written after it, the revision is no news.
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        later = figures.gather(con, L, today=FIRST_OF_THIS_MONTH, previous_report=datetime.now(timezone.utc))
    finally:
        con.close()
    assert (later.revisions.cells, later.revisions.named) == (0, [])


def test_the_html_says_it_in_the_chosen_language_with_charts_inline_and_the_pdf_holds_the_same_figures(site):
    from pypdf import PdfReader

    paths, _ = site
    folder = paths.reports / L.strftime("%Y-%m")
    spanish = (folder / "report.es.html").read_text(encoding="utf-8")
    english = (folder / "report.en.html").read_text(encoding="utf-8")
    assert '<html lang="es">' in spanish and "Tasa de envío" in spanish and "Reporting rate" not in spanish
    assert '<html lang="en">' in english and "Reporting rate" in english
    assert spanish.count("<svg") == 3 and "http" not in re.sub(r'xmlns(:\w+)?="[^"]+"', "", spanish)
    assert "13,600" in english and "13.600" in spanish  # the month's persons, written as each language does
    [written] = stages.write_reports(paths, L, ("en",))
    assert written.pdf == folder / "report.en.pdf"
    text = " ".join(page.extract_text() for page in PdfReader(written.pdf).pages)
    assert "13,600" in text and "Reporting rate" in text and L.strftime("%Y-%m") in text


def test_hmo_report_writes_a_month_asked_for_and_refuses_a_month_that_is_not_one(site, capsys, monkeypatch):
    from flows.cli import main

    paths, _ = site
    monkeypatch.setenv("HMO_DATA_DIR", str(paths.root))
    with writer_lock(paths.writer_lock, "hmo run"):  # the report reads the published copy: it never waits for a run
        assert main(["report", "--period", M.strftime("%Y-%m"), "--language", "en", "--no-pdf"]) == 0
    written = paths.reports / M.strftime("%Y-%m") / "report.en.html"
    assert capsys.readouterr().out == f"report {M:%Y-%m} (en): {written}\n"
    assert "R03" in written.read_text(encoding="utf-8")

    assert main(["report", "--period", "2025-13"]) != 0
    assert "not a month" in capsys.readouterr().err
    with pytest.raises(NoReportableMonth):
        parse_period("next month")


def test_the_html_renders_in_chromium_without_a_console_error(site):
    import os
    import shutil
    from pathlib import Path

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        if os.environ.get("HMO_REQUIRE_BROWSER") == "1" or os.environ.get("CI") == "true":
            raise AssertionError(f"no Chromium at {chromium} (apt-get install chromium; .ci/run does)")
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    paths, _ = site
    report = paths.reports / L.strftime("%Y-%m") / "report.en.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda request: problems.append(f"fetched {request.url}")
                    if not request.url.startswith("file:") else None)
            page.goto(report.as_uri())
            assert page.locator("#chart-routes svg").count() == 1
            assert page.locator("#q01-PAN td.cell").count() == 24
        finally:
            browser.close()
    assert problems == []


def test_the_monthly_run_mails_the_pdfs_to_the_ppt_when_smtp_is_set(site, smtp):
    from pypdf import PdfReader

    paths, _ = site
    assert stages.report(paths, pdf=True) == paths.reports / L.strftime("%Y-%m") / "report.es.html"
    [(_, recipients, raw)] = smtp.received
    assert recipients == ["ppt@cancilleria.example", "secretaria@crm.example"]
    attached = {part.get_filename(): part.get_content() for part in parsed(raw).iter_attachments()}
    assert set(attached) == {"report.es.pdf", "report.en.pdf"}
    english = (paths.reports / L.strftime("%Y-%m") / "attached.pdf")
    english.write_bytes(attached["report.en.pdf"])
    assert "13,600" in " ".join(page.extract_text() for page in PdfReader(english).pages)
