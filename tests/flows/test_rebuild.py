"""`hmo rebuild`: the archive and the event log give back the same marts."""
from __future__ import annotations

import duckdb

from conftest import STANDARD_HEADER, drop, drop_sample
from flows import stages
from flows.cli import main
from hmo import events
from hmo.warehouse import connect


def rows(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_rebuild_replays_archive_and_events_into_the_same_marts(paths, capsys):
    drop_sample(paths, "PAN")
    drop_sample(paths, "GTM")
    drop(paths, "PAN", "una.csv", STANDARD_HEADER + "\nPAN,2024-01,IRREGULAR_TRANSIT,_T,COL,_T,_T,VEN,5,A\n")
    stages.run(paths)
    # A revision replaces a slice: the replay must apply them in the same order.
    drop(paths, "PAN", "revision.csv", STANDARD_HEADER + "\nPAN,2024-01,IRREGULAR_TRANSIT,_T,COL,_T,_T,VEN,6,A\n")
    stages.run(paths)
    flows_before = rows(paths.warehouse, "select * from marts.fct_flows order by all")
    submissions_before = rows(paths.warehouse, "select submission_id, file_name, status, sha256, data_rows "
                                               "from marts.fct_submissions order by all")
    receipts_before = sorted(p.name for p in paths.outbox.rglob("*.txt"))

    kinds = [event["kind"] for event in events.read_all(paths)]
    # one arrival per file, one verdict per answer, the code lists' first build (the second run only adds facts)
    assert (kinds.count("received"), kinds.count("verdict"), kinds.count("marts_rebuilt")) == (4, 4, 1)

    assert main(["rebuild"]) == 0
    out = capsys.readouterr().out

    assert "replayed 4 submissions" in out
    assert "fct_flows: " in out and "identical to the replaced warehouse" in out
    assert rows(paths.warehouse, "select * from marts.fct_flows order by all") == flows_before
    assert rows(paths.warehouse, "select submission_id, file_name, status, sha256, data_rows "
                                 "from marts.fct_submissions order by all") == submissions_before
    assert rows(paths.published, "select count(*) from marts.fct_flows") == [(len(flows_before),)]
    assert sorted(p.name for p in paths.outbox.rglob("*.txt")) == receipts_before  # nobody answered twice
    assert list(paths.root.glob("replaced-*/warehouse.duckdb"))  # the old one is kept
    # New files after a rebuild get fresh ids.
    drop(paths, "PAN", "despues.csv", STANDARD_HEADER + "\nPAN,2024-02,IRREGULAR_TRANSIT,_T,COL,_T,_T,VEN,1,A\n")
    [verdict] = stages.run(paths).verdicts
    assert verdict.submission_id == 5 and verdict.status == "accepted"


def test_an_old_warehouse_says_run_rebuild(paths, capsys):
    connect(paths.warehouse).execute("update main.hmo_schema set version = 1").close()
    assert main(["ingest"]) == 1
    assert "run `hmo rebuild`" in capsys.readouterr().err


def test_a_changed_archive_is_refused_before_anything_moves(paths, capsys):
    drop_sample(paths, "PAN")
    stages.run(paths)
    [archived] = (paths.archive / "PAN").iterdir()
    archived.write_bytes(archived.read_bytes() + b"x")
    assert main(["rebuild"]) == 1
    assert "no longer holds the bytes received" in capsys.readouterr().err
    assert not list(paths.root.glob("replaced-*"))
