"""`hmo sql` and `hmo status` on the published copy: locked down, time-limited, one statement, never blocking."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from flows.cli import main
from hmo.settings import Paths
from hmo.warehouse import connect, publish


FOREVER = "select count(*) from range(1000000000) a, range(1000000000) b"


def hmo(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def published(paths: Paths) -> Paths:
    con = connect(paths.warehouse)
    con.execute("create schema marts; create table marts.fct_flows as select 'PAN' as reporting_country, 7 as count")
    con.close()
    publish(paths.warehouse, paths.published)
    return paths


@pytest.fixture
def running(published: Paths):
    """A published copy while a run holds the warehouse for writing: readers must not need it."""
    writer = connect(published.warehouse)
    yield published
    writer.close()


@pytest.mark.parametrize("sql, answer, written", [
    ("copy (select 1) to '{tmp}/x.csv'", "file system operations are disabled", "x.csv"),
    ("select * from read_csv('/etc/passwd')", "file system operations are disabled", None),
    ("select * from read_text('/etc/passwd')", "file system operations are disabled", None),
    ("attach '{tmp}/other.duckdb' as other", "file system operations are disabled", None),
    ("set memory_limit = '10GB'", "the configuration has been locked", None),
    ("set threads = 64", "the configuration has been locked", None),
    ("install httpfs", "file system operations are disabled", None),
    ("load httpfs", "Loading external extensions is disabled", None),
    ("create table x (a int)", "read-only", None),
    ("pragma profiling_output = '{tmp}/profile.json'", "the configuration has been locked", "profile.json"),
    ("export database '{tmp}/export'", "file system operations are disabled", "export"),
], ids=["copy-to", "read_csv", "read_text", "attach", "memory_limit", "threads", "install", "load",
        "create-table", "pragma-profiling-output", "export-database"])
def test_each_attack_is_refused_with_one_line(running, tmp_path, capsys, sql, answer, written):
    connect(tmp_path / "other.duckdb").close()

    code, out, err = hmo(capsys, "sql", sql.format(tmp=tmp_path))

    assert (code, out) == (1, "")
    assert err.startswith("hmo: ") and err.count("\n") == 1 and answer in err
    assert written is None or not (tmp_path / written).exists()


@pytest.mark.parametrize("sql, answer", [
    ("", "hmo: no SQL given\n"),
    ("  \n -- nothing\n", "hmo: no SQL given\n"),
    ("select 1; select 2", "hmo: give one statement at a time (this query has 2)\n"),
    # With several statements allowed, the first two would make the third write a file.
    ("pragma enable_profiling = 'json'; pragma profiling_output = '{tmp}/p.json'; select 1",
     "hmo: give one statement at a time (this query has 3)\n"),
    ("selec 1", 'hmo: Parser Error: syntax error at or near "selec"\n'),
])
def test_a_query_is_exactly_one_statement(running, tmp_path, capsys, sql, answer):
    assert hmo(capsys, "sql", sql.format(tmp=tmp_path)) == (1, "", answer)
    assert not (tmp_path / "p.json").exists()


def test_a_query_running_too_long_is_stopped(running, capsys):
    started = time.monotonic()
    code, out, err = hmo(capsys, "sql", FOREVER, "--timeout", "1")
    assert time.monotonic() - started < 5
    assert (code, out) == (1, "")
    assert err == "hmo: the query ran longer than 1 s and was stopped (raise --timeout to allow more)\n"


def test_ctrl_c_stops_a_query_with_one_line(published, capsys):
    ctrl_c = threading.Timer(1, os.kill, [os.getpid(), signal.SIGINT])
    ctrl_c.start()
    started = time.monotonic()
    try:
        code, out, err = hmo(capsys, "sql", FOREVER)
    except BaseException as exc:  # DuckDB makes a Ctrl-C mid-query a RuntimeError
        pytest.fail(f"hmo let {exc!r} out")
    finally:
        ctrl_c.cancel()
    assert time.monotonic() - started < 5
    assert code != 0 and out == "" and err.startswith("hmo: ") and err.count("\n") == 1


def test_sql_reads_the_published_copy_not_the_warehouse(paths, capsys):
    connect(paths.warehouse).close()
    assert hmo(capsys, "sql", "select 1") == (1, "", "hmo: nothing is published yet: run `hmo run` first\n")

    con = connect(paths.warehouse)
    con.execute("create schema marts; create table marts.fct_flows as select 7 as count")
    con.close()
    publish(paths.warehouse, paths.published)
    con = connect(paths.warehouse)
    con.execute("insert into marts.fct_flows values (8)")  # not published yet
    con.close()

    assert hmo(capsys, "sql", "select sum(count) as total from fct_flows", "--format", "csv") == (0, "total\n7\n", "")


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(running, capsys):
    code, out, _ = hmo(capsys, "sql", "select '=HYPERLINK(\"http://x\")' as a, '+1' as b, '-1' as c, '@SUM(A1)' as d, "
                       "chr(9) || '=1' as e, chr(13) || '=1' as f, 'ok' || chr(13) || '=1' as g, 'PAN' as h, "
                       "-5 as i, 1.5 as \"=j\"", "--format", "csv")
    assert code == 0
    assert list(csv.reader(io.StringIO(out, newline=""))) == [
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "'=j"],
        # A plain number, text or not, runs nothing and stays as sent (hmo/spreadsheets.py).
        ["'=HYPERLINK(\"http://x\")", "+1", "-1", "'@SUM(A1)", "'\t=1", "'\r=1", "ok\r=1", "PAN", "-5", "1.5"],
    ]
    code, out, _ = hmo(capsys, "sql", "select '-2+3+cmd|'' /C calc''!A0' as a, '+1.5e3' as b", "--format", "csv")
    assert list(csv.reader(io.StringIO(out, newline="")))[1] == ["'-2+3+cmd|' /C calc'!A0", "'+1.5e3"]


def test_status_shows_refused_files_and_when_it_was_published(paths, capsys):
    con = connect(paths.warehouse)
    con.execute("""insert into raw.submissions (submission_id, reporting_country, file_name, archive_path, sha256,
                                            size_bytes, data_rows, received_at, load_state)
                   values (1, 'PAN', 'flows.csv', 'archive/PAN/ab', 'ab', 100, 18, now(), 'received')""")
    con.execute("""insert into raw.refused_files values
        ('PAN/notes.docx', 'not a CSV, TSV, TXT or XLSX file', now(), now()),
        ('COL/2024/entries.csv', 'not directly in inbox/<ISO3>/', now(), now()),
        ('=cmd.csv', 'not in a country folder', now(), now())""")
    con.close()
    publish(paths.warehouse, paths.published)

    code, out, _ = hmo(capsys, "status", "--format", "json")
    submission, *refused = json.loads(out)
    assert code == 0
    assert (submission["country"], submission["status"], submission["note"]) == ("PAN", "received", None)
    assert [(r["country"], r["file"], r["status"], r["note"]) for r in refused] == [
        (None, "=cmd.csv", "refused", "not in a country folder"),
        ("COL", "COL/2024/entries.csv", "refused", "not directly in inbox/<ISO3>/"),
        ("PAN", "PAN/notes.docx", "refused", "not a CSV, TSV, TXT or XLSX file"),
    ]

    code, out, _ = hmo(capsys, "status", "--country", "pan", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["status"], r["note"]) for r in rows] == [("received", ""), ("refused", "not a CSV, TSV, TXT or XLSX file")]

    code, out, _ = hmo(capsys, "status")
    assert out.splitlines()[-1].startswith("as published 20")
    assert "=cmd.csv" in out


def test_queries_never_block_nor_are_blocked_by_publishing(paths, capsys):
    con = connect(paths.warehouse)
    con.execute("create table pings_a (n int); create table pings_b (n int)")
    con.close()
    publish(paths.warehouse, paths.published)
    publications, failures = 12, []

    def pipeline() -> None:
        try:
            for n in range(publications):
                con = connect(paths.warehouse)
                # Two commits per run: a reader seeing one without the other read a half-made state.
                con.execute("insert into pings_a values (?)", [n])
                con.execute("insert into pings_b values (?)", [n])
                con.close()
                publish(paths.warehouse, paths.published)
        except Exception as exc:  # the assertion below reports it
            failures.append(exc)

    writer = threading.Thread(target=pipeline)
    writer.start()
    seen: list[tuple[int, int]] = []
    while writer.is_alive() or not seen:
        # The range keeps each query open long enough for publications to land during it.
        code, out, err = hmo(capsys, "sql", "select (select count(*) from pings_a), (select count(*) from pings_b), "
                             "(select count(*) from range(2000000))", "--format", "csv")
        assert (code, err) == (0, "")
        a, b, _ = map(int, out.splitlines()[1].split(","))
        seen.append((a, b))
    writer.join()

    assert failures == []
    assert all(a == b for a, b in seen) and seen == sorted(seen)
    assert len(seen) >= 5 and len(set(seen)) > 1
    assert hmo(capsys, "sql", "select count(*) from pings_a", "--format", "csv")[1] == f"count_star()\n{publications}\n"


def test_analysts_query_in_a_loop_while_a_real_build_publishes_a_revision(paths):
    from flows import stages
    from flows import query
    from conftest import drop, drop_sample

    drop_sample(paths, "PAN")
    stages.run(paths)
    state = ("select (select count(*) from fct_flows), (select sum(count) from fct_flows), "
             "(select count(*) from publication.pub_flows), (select count(*) from fct_flows_history)")
    before = query.run(paths, state).rows[0]
    revision = paths.root.parent / "revision.csv"
    original = Path(__file__).parents[2] / "data" / "samples" / "PAN" / "panama_transitos_2024-01_02.csv"
    revision.write_text(original.read_text(encoding="utf-8").replace(",VEN,1000,", ",VEN,1100,"), encoding="utf-8")
    failures: list[BaseException] = []

    def build() -> None:
        try:
            drop(paths, "PAN", "revision.csv", revision.read_bytes())
            summary = stages.run(paths)
            assert summary.failure is None and summary.published is not None
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    writer = threading.Thread(target=build)
    writer.start()
    seen = []
    while writer.is_alive():
        seen.append(query.run(paths, state).rows[0])
    writer.join()
    after = query.run(paths, state).rows[0]
    assert failures == []
    assert after != before and len(seen) >= 3
    # every answer is the whole publication before the build or the whole one after it, never a mix
    assert set(seen) <= {before, after}
