"""Issue #9's cases through the real stages (DuckDB, dbt, GX; Prefect is the e2e test's job)."""
from __future__ import annotations

import json

import duckdb
import pytest

from conftest import STANDARD_HEADER, drop, drop_sample
from flows import stages
from hmo.settings import Paths

GOOD_PAN = STANDARD_HEADER + "\nPAN,2024-02,ENTRY,_T,_T,_T,_T,VEN,10,A\n"
LONG_NAME = "informe_mensual_de_movimientos_migratorios_" * 5 + "2024_02.csv"  # 244 characters


def published(paths: Paths, sql: str) -> list[tuple]:
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def receipts(paths: Paths) -> dict[str, dict]:
    return {json.loads(p.read_text(encoding="utf-8"))["file_name"]: json.loads(p.read_text(encoding="utf-8"))
            for p in paths.outbox.rglob("*.json")}


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory):
    paths = Paths(tmp_path_factory.mktemp("odd") / "data")
    paths.ensure()
    drop(paths, "PAN", "sin_tipo.csv", STANDARD_HEADER + "\nPAN,2024-01,,_T,_T,_T,_T,VEN,5,A\n")
    drop(paths, "PAN", LONG_NAME, GOOD_PAN)
    drop(paths, "CRI", "formula.csv",
         STANDARD_HEADER + '\nCRI,2024-01,ENTRY,"=HYPERLINK(""http://x"",""y"")",_T,_T,_T,VEN,5,A\n')
    drop_sample(paths, "MEX")
    summary = stages.run(paths)
    return paths, summary


def test_an_empty_flow_type_is_an_r02_error_and_never_published(odd_files):
    paths, summary = odd_files
    assert summary.failure is None
    problems = receipts(paths)["sin_tipo.csv"]["problems"]
    assert ("R02", 2, "flow_type") in {(p["rule"], p["row"], p["column"]) for p in problems}
    assert published(paths, "select count(*) from marts.fct_flows where flow_type is null") == [(0,)]


def test_every_file_gets_exactly_one_receipt_a_long_name_too(odd_files):
    paths, _ = odd_files
    texts = sorted(p.name for p in paths.outbox.rglob("*.txt"))
    assert len(texts) == 4
    assert {r["status"] for r in receipts(paths).values()} >= {"accepted", "rejected"}
    assert receipts(paths)[LONG_NAME]["status"] == "accepted"
    assert all(len(name.encode()) <= 255 for name in texts)


def test_a_formula_in_a_text_column_is_rejected(odd_files):
    paths, _ = odd_files
    [problem] = [p for p in receipts(paths)["formula.csv"]["problems"] if p["column"] == "border_point"]
    assert problem["rule"] == "R02" and problem["value"].startswith("=HYPERLINK")


def test_the_next_run_after_a_bad_file_is_clean(odd_files):
    paths, _ = odd_files
    drop(paths, "PAN", "otro.csv", STANDARD_HEADER + "\nPAN,2024-03,ENTRY,_T,_T,_T,_T,VEN,7,A\n")
    summary = stages.run(paths)
    assert summary.failure is None
    assert [v.status for v in summary.verdicts] == ["accepted"]
    assert published(paths, "select sum(count) from marts.fct_flows where reporting_country = 'PAN'") == [(17,)]


def test_rows_that_slip_past_the_suites_are_rejected_by_the_audit_and_the_rest_published(paths):
    """A validation bug is simulated by accepting a file behind the suites' back."""
    from hmo.warehouse import connect

    drop(paths, "PAN", "bueno.csv", GOOD_PAN)
    stages.run(paths)
    drop(paths, "PAN", "colado.csv", STANDARD_HEADER + "\nPAN,2024-03,,_T,_T,_T,_T,VEN,99,A\n")
    drop(paths, "PAN", "otro_bueno.csv", STANDARD_HEADER + "\nPAN,2024-04,ENTRY,_T,_T,_T,_T,VEN,1,A\n")
    stages.run(paths, stages=("ingest",))
    con = connect(paths.warehouse)
    con.execute("insert into validation.verdicts (submission_id, status, decided_by) "
                "select submission_id, 'accepted', 'suites' from raw.submissions where file_name = 'colado.csv'")
    con.close()

    summary = stages.run(paths, stages=stages.BUILD_STAGES)

    assert summary.failure is None
    assert len(summary.audit.rejected) == 1
    assert receipts(paths)["colado.csv"]["status"] == "rejected"
    assert {p["rule"] for p in receipts(paths)["colado.csv"]["problems"]} == {"A01"}
    assert receipts(paths)["otro_bueno.csv"]["status"] == "accepted"
    assert published(paths, "select count(*) from marts.fct_flows where flow_type is null") == [(0,)]
    assert published(paths, "select sum(count) from marts.fct_flows") == [(11,)]


def test_a_fault_no_file_explains_keeps_the_last_publication(paths):
    from hmo.warehouse import connect

    drop(paths, "PAN", "bueno.csv", GOOD_PAN)
    stages.run(paths)
    before = paths.published.read_bytes()
    con = connect(paths.warehouse)  # the project's fault, not a file's: a dimension loses a code
    con.execute("delete from marts.dim_country where country_code = 'PAN'")
    con.close()
    drop(paths, "PAN", "nuevo.csv", STANDARD_HEADER + "\nPAN,2024-05,ENTRY,_T,_T,_T,_T,VEN,3,A\n")
    drop(paths, "PAN", "malo.csv", STANDARD_HEADER + "\nPAN,2024-01,ENTRY,_T,_T,_T,_T,Narnia,5,A\n")

    summary = stages.run(paths)

    assert summary.failure and "full-refresh" in summary.failure
    assert paths.published.read_bytes() == before
    assert set(receipts(paths)) == {"bueno.csv", "malo.csv"}  # the new acceptance waits for a clean audit
    summary = stages.run(paths, full_refresh=True, stages=stages.BUILD_STAGES)
    assert summary.failure is None
    assert receipts(paths)["nuevo.csv"]["status"] == "accepted"
