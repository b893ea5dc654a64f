"""One owner per schema, data flowing one way (issue #11): ingest writes `raw` and
no later stage changes it; verdicts are appended, never rewritten; only dbt
names `intermediate`.

Through the real stages: an audit that rejects a file (A01), a later run, and
`hmo revalidate` all leave every raw row ingest wrote as it was.
"""
from __future__ import annotations

import re

import duckdb

from conftest import STANDARD_HEADER, drop
from flows import stages
from flows.cli import main
from hmo.settings import PROJECT_ROOT, Paths
from hmo.warehouse import connect

RAW_TABLES = ("raw.submissions", "raw.observations", "raw.load_failures", "raw.duplicates")
GOOD = STANDARD_HEADER + "\nPAN,2024-02,ENTRY,_T,_T,_T,_T,VEN,10,A\n"
# Passes the suites once they are told it did (below); the marts' not-null test on flow_type then blames it.
SLIPS_PAST = STANDARD_HEADER + "\nPAN,2024-03,,_T,_T,_T,_T,VEN,99,A\n"
UNKNOWN_NAME = STANDARD_HEADER + "\nPAN,2024-04,ENTRY,_T,_T,_T,_T,Narnia,3,A\n"


def snapshot(paths: Paths, tables: tuple[str, ...]) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return {table: con.execute(f"select * from {table} order by all").fetchall() for table in tables}
    finally:
        con.close()


def verdicts(paths: Paths) -> list[tuple]:
    return snapshot(paths, ("validation.verdicts",))["validation.verdicts"]


def statuses(paths: Paths) -> dict[str, str]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return dict(con.execute("select file_name, status from marts.fct_submissions").fetchall())
    finally:
        con.close()


def test_no_stage_after_ingest_changes_raw_and_verdicts_are_only_appended(paths, capsys):
    drop(paths, "PAN", "bueno.csv", GOOD)
    drop(paths, "PAN", "colado.csv", SLIPS_PAST)
    drop(paths, "PAN", "narnia.csv", UNKNOWN_NAME)
    stages.run(paths, stages=("ingest",))
    con = connect(paths.warehouse)
    try:
        # A validation bug, simulated: the suites' verdict for colado.csv says accepted.
        con.execute("insert into validation.verdicts (submission_id, status, decided_by) "
                    "select submission_id, 'accepted', 'suites' from raw.submissions where file_name = 'colado.csv'")
    finally:
        con.close()
    ingested = snapshot(paths, RAW_TABLES)

    summary = stages.run(paths, stages=stages.BUILD_STAGES + ("report",))

    assert summary.failure is None and len(summary.audit.rejected) == 1  # the audit rejected colado.csv
    assert snapshot(paths, RAW_TABLES) == ingested
    given = verdicts(paths)
    assert statuses(paths) == {"bueno.csv": "accepted", "colado.csv": "rejected", "narnia.csv": "rejected"}

    # A later file, and a rejected one validated again: raw only grows, verdicts only grow.
    drop(paths, "PAN", "otro.csv", GOOD.replace("2024-02", "2024-05"))
    stages.run(paths)
    [narnia] = [row[0] for row in snapshot(paths, ("raw.submissions",))["raw.submissions"] if row[2] == "narnia.csv"]
    assert main(["revalidate", str(narnia)]) == 0, capsys.readouterr().err
    after = snapshot(paths, RAW_TABLES)
    for table, rows in ingested.items():
        assert all(row in after[table] for row in rows), f"{table} lost or changed a row ingest wrote"
        assert len(after[table]) >= len(rows)
    assert verdicts(paths)[:len(given)] == given


def test_only_dbt_names_the_intermediate_schema():
    """Python reads contracted marts; what dbt keeps in between may change freely."""
    offenders = []
    for package in ("ingest", "expectations", "flows", "harmonise", "report", "bench"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(r"\bintermediate\.\w", line):
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert offenders == []
