"""The `hmo` command line without Prefect: status, sql and error messages (more on sql in test_query.py)."""
from __future__ import annotations

import io
import json
import os
import re
import select
import sys
import time

from flows.cli import main
from ingest.submissions import ingest_inbox
from hmo.warehouse import connect, publish
from conftest import drop_sample


def test_sql_and_status_read_the_published_copy_in_each_format(paths, capsys):
    drop_sample(paths, "PAN")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    con.close()
    publish(paths.warehouse, paths.published)

    assert main(["status", "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["country"] == "PAN" and row["status"] == "received" and row["rows"] == 18

    assert main(["sql", "select count(*) as n from raw.observations", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "n\n18\n"

    assert main(["sql", "select 1 as one"]) == 0
    assert "(1 rows)" in capsys.readouterr().out


def test_sql_is_read_only(paths, capsys):
    connect(paths.warehouse).close()
    publish(paths.warehouse, paths.published)
    assert main(["sql", "create table x (a int)"]) == 1
    assert "read-only" in capsys.readouterr().err


def test_a_missing_warehouse_is_a_clear_error(paths, capsys):
    assert main(["status"]) == 1
    assert "hmo run" in capsys.readouterr().err


def test_on_a_terminal_the_stages_are_a_live_display_and_elsewhere_plain_lines(paths, monkeypatch):
    from flows import progress

    def one_stage() -> None:
        with progress.Watch(paths, "build") as watch:
            shown = type(watch.display)
            progress.call("publish", lambda: paths.published)
        return shown

    # Not a terminal (this test's streams): plain lines.
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert one_stage() is progress.Lines
    assert err.getvalue().splitlines()[0] == "publish: started"
    assert re.fullmatch(rf"publish: done in \d+\.\d s: readers now open {re.escape(str(paths.published))}",
                        err.getvalue().splitlines()[1])

    # A terminal (a pseudo-terminal's end): the live display, drawn with escape codes.
    leader, follower = os.openpty()
    with os.fdopen(follower, "w", encoding="utf-8") as terminal:
        monkeypatch.setattr(sys, "stdout", terminal)
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setenv("TERM", "xterm")
        assert one_stage() is progress.Live
        terminal.flush()
        drawn = b""
        # Until the display's last words arrive (a loaded machine draws late), or 10 s.
        deadline = time.monotonic() + 10
        while (b"readers now open" not in drawn or "✓".encode() not in drawn) and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                drawn += os.read(leader, 65536)
        while select.select([leader], [], [], 0.2)[0]:
            drawn += os.read(leader, 65536)
    os.close(leader)
    text = drawn.decode("utf-8", errors="replace")
    assert "\x1b[" in text and "publish" in text and "readers now open" in text and "✓" in text
