"""The GX project as the pipeline runs it: one checkpoint per country, failing rows from GX, Data Docs per site.

The batches are prepared by `prepare_batches` itself, from a table standing
in for dbt's resolved view (the shape int_observations__resolved gives), so
each test costs GX's run and not a dbt build.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest

from expectations import gx_project
from expectations.rules import RULES, RULES_BY_ID
from expectations.suites import GX_PROJECT, RuleOutcome, data_docs_index, run_suites
from expectations.validate import prepare_batches
from hmo.settings import PROJECT_ROOT, Paths
from hmo.warehouse import RAW_DDL, connect

CODES = ["reporting_country", "period", "flow_type", "counterpart_country", "sex", "age", "nationality",
         "count", "obs_status"]


@pytest.fixture
def con(paths: Paths):
    con = connect(paths.warehouse)
    stand_in_for_dbt(con)
    yield con
    con.close()


def stand_in_for_dbt(con) -> None:
    """The seeds the rules read, and a table of the resolved view's shape for prepare_batches."""
    con.execute("create schema if not exists seeds")
    for seed in ("cl_age", "countries"):
        con.execute(f"create table seeds.{seed} as select * from read_csv(?, all_varchar = true)",
                    [str(PROJECT_ROOT / "dbt_project" / "seeds" / f"{seed}.csv")])
    con.execute("create schema if not exists marts")
    con.execute(
        "create table marts.fct_submitted_observations (submission_id integer, source_row bigint, "
        "inbox_country varchar, border_point varchar, "
        + ", ".join(f"{c} {'date' if c == 'period' else 'bigint' if c == 'count' else 'varchar'}, {c}_value varchar"
                    for c in CODES)
        + ", nationality_ambiguous varchar, counterpart_country_ambiguous varchar)")


def arrive(con, country: str, rows: list[str], read_error: str | None = None, data_rows: int | None = None) -> int:
    """A received submission from `country`; rows: 'period,flow_type,sex,age,nationality,count' as written."""
    [(submission_id,)] = con.execute(
        "insert into raw.submissions (submission_id, reporting_country, file_name, archive_path, sha256, size_bytes, "
        "read_error, data_rows, missing_columns, duplicate_columns, received_at, load_state) "
        "select coalesce(max(submission_id), 0) + 1, ?, 'f.csv', 'a', 's', 1, ?, ?, [], [], now(), 'received' "
        "from raw.submissions returning submission_id",
        [country, read_error, len(rows) if data_rows is None else data_rows]).fetchall()
    for number, line in enumerate(rows, start=2):
        period, flow, sex, age, nationality, count = line.split(",")
        known = nationality in ("VEN", "COL", "_T")
        con.execute(
            "insert into marts.fct_submitted_observations by name select ? as submission_id, "
            "? as source_row, ? as inbox_country, '_T' as border_point, ? as reporting_country, "
            "(? || '-01')::date as period, ? as flow_type, '_T' as counterpart_country, ? as sex, ? as age, "
            "? as nationality, ? as nationality_value, ?::bigint as count, 'A' as obs_status",
            [submission_id, number, country, country, period, flow, sex, age,
             nationality if known else None, nationality, count])
    return submission_id


def outcomes(con, **kwargs) -> dict[str, RuleOutcome]:
    prepare_batches(con)
    return {outcome.rule_id: outcome for outcome in run_suites(con, **kwargs)}


def copy_project(tmp_path: Path) -> Path:
    """A copy of the GX project to edit: the committed files are never touched."""
    shutil.copytree(GX_PROJECT / "gx", tmp_path / "project" / "gx")
    return tmp_path / "project"


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


CLEAN = ["2024-01,ENTRY,_T,_T,VEN,3", "2024-01,ENTRY,_T,_T,COL,4"]


def test_the_project_files_are_consistent_and_the_check_finds_what_is_not(tmp_path):
    assert gx_project.check() == []
    project = copy_project(tmp_path)
    edit_json(project / "gx" / "expectations" / "standard_row.json",
              lambda suite: suite["expectations"][0]["meta"].update(rule_id="C09"))
    assert any("not a row-level rule" in problem for problem in gx_project.check(project))


def test_rules_are_read_from_the_suites_without_gx():
    assert [rule.rule_id for rule in RULES] == ["S01", "S02", "S03", "R01", "R02", "R03", "R04", "C01", "C02"]
    assert RULES_BY_ID["C02"].severity == "warning"
    assert {rule.severity for rule in RULES if rule.rule_id != "C02"} == {"error"}
    assert RULES_BY_ID["S01"].sql == ""  # built-in expectations: no SQL of ours
    assert all("{batch}" in rule.sql for rule in RULES if rule.rule_id != "S01")
    assert RULES_BY_ID["S03"].target == "submissions" and RULES_BY_ID["R01"].target == "observations"
    file_suite = json.loads((GX_PROJECT / "gx" / "expectations" / "standard_file.json").read_text())
    assert [e["meta"]["rule_id"] for e in file_suite["expectations"]] == ["S01", "S01", "S02", "S03"]


def test_changing_a_threshold_in_its_suite_changes_the_verdict(con, tmp_path):
    """S01's bound (at least one data row) is the built-in's min_value: raise it in a copy, same file, rejected."""
    submission = arrive(con, "PAN", CLEAN, data_rows=3)
    assert outcomes(con)["S01"].success

    project = copy_project(tmp_path)

    def raise_the_bound(suite: dict) -> None:
        [between] = [e for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_between"]
        between["kwargs"]["min_value"] = 4

    edit_json(project / "gx" / "expectations" / "standard_file.json", raise_the_bound)
    s01 = outcomes(con, project=project)["S01"]
    assert (s01.success, s01.severity) == (False, "error")
    assert s01.rows == [{"submission_id": submission, "source_row": None, "column_name": None,
                         "value": "no data rows", "detail": None}]


def test_every_failing_row_comes_from_gx_past_its_sample(con):
    arrive(con, "PAN", [f"2024-01,ENTRY,_T,_T,Nowhere {i:03d},1" for i in range(250)])
    submission = arrive(con, "PAN", [], read_error="the file is empty #0")
    found = outcomes(con)
    r02 = found["R02"]
    assert not r02.success and len(r02.rows) == 250
    assert sorted(row["source_row"] for row in r02.rows) == list(range(2, 252))
    assert {row["value"] for row in r02.rows} == {f"Nowhere {i:03d}" for i in range(250)}
    assert all(set(row) == {"submission_id", "source_row", "column_name", "value", "detail"} for row in r02.rows)
    assert found["S01"].rows == [{"submission_id": submission, "source_row": None, "column_name": None,
                                  "value": "the file is empty #0", "detail": None}]
    assert found["R01"].success and found["R01"].rows == []


def test_a_country_whose_files_have_no_rows_gets_its_file_suite(con, paths):
    """GX's partitioner finds no row batch for CRI: the checkpoint standard_files_only runs for it."""
    arrive(con, "PAN", [*CLEAN, "2024-01,ENTRY,_T,_T,Nowhere,1"])
    cri = arrive(con, "CRI", [], read_error="not a readable XLSX workbook")
    found = outcomes(con)
    assert [row["submission_id"] for row in found["S01"].rows] == [cri]
    assert [row["value"] for row in found["R02"].rows] == ["Nowhere"]
    suites = {page.parent.parent.parent.name for page in (paths.data_docs / "sites" / "CRI").rglob("*_CRI.html")}
    assert suites == {"standard_file"}


def text_of(folder: Path, pattern: str) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(folder.rglob(pattern)))


def test_a_countrys_data_docs_show_its_own_results_and_the_staffs_show_every_country(con, paths):
    # What each country's pages name: an unreadable file's reason (S01 shows the failing values;
    # a rule in SQL shows its count of failing rows).
    arrive(con, "PAN", [], read_error="Atlantida Panama")
    arrive(con, "PAN", [*CLEAN, "2024-01,ENTRY,_T,_T,Nowhere Panama,1"])
    arrive(con, "CRI", [], read_error="Atlantida Costa Rica")
    arrive(con, "CRI", [*CLEAN, "2024-01,ENTRY,_T,_T,Nowhere Costa Rica,1"])
    outcomes(con)
    pan, cri, staff = (data_docs_index(paths, country) for country in ("PAN", "CRI", None))
    assert staff == paths.data_docs / "sites" / "staff" / "index.html"
    assert pan.is_file() and cri.is_file() and staff.is_file()
    pages = {name: text_of(index.parent, "*.html") for name, index in (("PAN", pan), ("CRI", cri), ("staff", staff))}
    assert "Atlantida Panama" in pages["PAN"] and "Atlantida Costa Rica" not in pages["PAN"]
    assert "Atlantida Costa Rica" in pages["CRI"] and "Atlantida Panama" not in pages["CRI"]
    assert "Atlantida Panama" in pages["staff"] and "Atlantida Costa Rica" in pages["staff"]
    # Nor does a country's site link another's results, or hold their pages.
    assert "inbox_country_CRI" not in pages["PAN"] and "inbox_country_PAN" in pages["PAN"]
    assert "inbox_country_CRI" in pages["staff"] and "inbox_country_PAN" in pages["staff"]
    assert {page.name for page in (pan.parent / "validations").rglob("*.html")} == {
        "warehouse-submissions-inbox_country_PAN.html", "warehouse-observations-inbox_country_PAN.html"}
    results = {name: text_of(paths.data_docs / "validations" / name, "*.json") for name in ("PAN", "CRI", "staff")}
    assert "Atlantida Panama" in results["PAN"] and "Costa Rica" not in results["PAN"]
    assert "Atlantida Costa Rica" in results["CRI"] and "Panama" not in results["CRI"]
    assert "Atlantida Panama" in results["staff"] and "Atlantida Costa Rica" in results["staff"]


def test_the_stores_keep_their_newest_results_and_the_sites_follow(con, paths, tmp_path):
    project = copy_project(tmp_path)
    for checkpoint in (project / "gx" / "checkpoints").glob("*.json"):
        edit_json(checkpoint, lambda c: c["actions"][0].update(keep_results=4))
    arrive(con, "PAN", CLEAN)
    prepare_batches(con)
    for _ in range(3):  # three runs of the same batch: nine results per store before pruning
        run_suites(con, project=project)
    for store in ("PAN", "staff"):
        assert len(list((paths.data_docs / "validations" / store).rglob("*.json"))) == 4
        pages = list((paths.data_docs / "sites" / store / "validations").rglob("*.html"))
        assert len(pages) == 4
        index = data_docs_index(paths, None if store == "staff" else store).read_text(encoding="utf-8")
        assert index.count("inbox_country_PAN.html") == 4


def test_a_run_writes_nothing_into_the_project(con):
    def snapshot() -> dict[str, str]:
        return {str(p.relative_to(GX_PROJECT)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in (GX_PROJECT / "gx").rglob("*") if p.is_file()}

    before = snapshot()
    arrive(con, "PAN", CLEAN)
    outcomes(con)
    assert snapshot() == before


def test_data_docs_of_a_database_outside_a_data_directory_are_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    con = duckdb.connect()
    con.execute(RAW_DDL)
    stand_in_for_dbt(con)
    arrive(con, "PAN", [], read_error="unreadable")
    s01 = outcomes(con)["S01"]
    assert (s01.success, s01.rows[0]["value"]) == (False, "unreadable")
    assert not list(tmp_path.glob("hmo-data-docs-*"))


def test_a_site_is_named_by_an_iso3_code_only(paths):
    with pytest.raises(ValueError):
        data_docs_index(paths, "../PAN")
