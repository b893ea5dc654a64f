"""`hmo run` on a machine with no Prefect server: the run brings its own and takes it away.

Also what `hmo run` shows a person (flows/progress.py): the stages on stderr, the summary and the
log file's name on stdout, Prefect's and dbt's lines in that file (and on stderr with --verbose).
"""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import drop_sample
from flows import server
from flows.cli import main
from flows.server import prefect_api

STAGE_LINE = re.compile(r"(start|ingest|validate|audit|publish|receipts|report|stop): "
                        r"(started|done in \d+\.\d s: .+|reading [A-Z]{3}/.+ \(\d+ of \d+\))")
# What Prefect's and dbt's own lines look like, on the console or in the log file.
PREFECT_OR_DBT = re.compile(r"Flow run|Task run|Finished in state|Beginning flow run|prefect\.|dbt[:=]|"
                            r"\b(START|PASS) (sql|seed|test|hook)|\| (INFO|WARNING|ERROR)")


def hmo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A data directory and Prefect home of the test's own, and no API: each run starts its own server."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_LOGGING_LEVEL")}
    env.update(HMO_DATA_DIR=str(tmp_path / "data"), PREFECT_HOME=str(tmp_path / "prefect"), **extra)
    return env


def _hmo(*args: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], env=hmo_env(tmp_path, **extra),
                          capture_output=True, text=True, timeout=300)


def _servers_of(tmp_path: Path) -> list[str]:
    # A server started for the run carries the run's PREFECT_HOME in its environment.
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"PREFECT_HOME={tmp_path / 'prefect'}".encode() in environ.read_bytes():
                found.append(environ.parent.name)
        except OSError:
            continue
    return found


def test_demo_without_a_prefect_server_runs_the_flow_and_leaves_no_server_behind(tmp_path):
    result = _hmo("demo", tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "accepted  PAN/" in result.stdout and "rejected  GTM/" in result.stdout
    assert not _servers_of(tmp_path)

    # stdout: the summary as before, then the log's name; stderr: one plain line per step (not a terminal).
    *summary, last = result.stdout.splitlines()
    assert summary[-1] == f"report: {tmp_path / 'data' / 'reports' / '2024-02' / 'report.es.html'}"
    log = Path(last.removeprefix("log: "))
    assert last.startswith("log: ") and log.parent == tmp_path / "data" / "logs" and log.name.startswith("run-")
    progress = result.stderr.splitlines()
    assert progress and all(STAGE_LINE.fullmatch(line) for line in progress), result.stderr
    assert [line.split(":")[0] for line in progress if line.endswith(": started")] == \
        ["start", "ingest", "validate", "audit", "publish", "receipts", "report", "stop"]
    assert "start: done in" in result.stderr and ": a temporary Prefect server at http://127.0.0.1:" in result.stderr
    assert "\x1b[" not in result.stderr + result.stdout  # no escape codes outside a terminal
    assert not PREFECT_OR_DBT.search(result.stdout + result.stderr)

    # The log file has what the console does not: Prefect's lines, dbt's, each stage's detail.
    text = log.read_text(encoding="utf-8")
    for expected in ("Beginning flow run", "prefect.task_runs [ingest-", "ingest: received PAN/",
                     "dbt: Running with dbt=", "OK created sql incremental model marts.fct_flows",
                     "validate: rejected GTM/", "report: wrote ", "Finished in state Completed()"):
        assert expected in text, expected

    # The server recorded the run, its logs included: the log workers were drained before it stopped.
    db = sqlite3.connect(tmp_path / "prefect" / "prefect.db")
    try:
        assert db.execute("select state_type from flow_run").fetchall() == [("COMPLETED",)]
        assert db.execute("select count(*) from log where message like 'report: wrote %'").fetchone() == (1,)
        assert db.execute("select count(*) from log where message like 'dbt: %'").fetchone()[0] > 50
    finally:
        db.close()


def test_a_server_that_cannot_start_is_one_clear_error(tmp_path):
    result = _hmo("run", tmp_path=tmp_path,
                  PREFECT_SERVER_DATABASE_CONNECTION_URL="sqlite+aiosqlite:////nonexistent/dir/prefect.db")

    assert result.returncode == 1
    *progress, error = result.stderr.splitlines()
    assert progress[0] == "start: started" and re.fullmatch(r"start: failed after \d+\.\d s", progress[-1])
    assert error.startswith("hmo: the temporary Prefect server stopped at start-up"), result.stderr
    assert "unable to open database file" in error
    assert [line for line in result.stderr.splitlines() if line.startswith("hmo:")] == [error]
    assert not _servers_of(tmp_path)


def test_a_configured_api_is_used_as_it_is(prefect_server, tmp_path):
    from prefect.settings import get_current_settings

    configured = get_current_settings().api.url
    with prefect_api(tmp_path / "server.log") as api:
        assert (api.url, api.temporary) == (configured, False)
    assert not (tmp_path / "server.log").exists()


def test_the_server_is_started_with_options_and_settings_prefect_documents():
    """A Prefect upgrade that renames any of them breaks this, rather than the run."""
    from prefect.settings import get_current_settings

    command = server.server_command(4200)
    assert command[:3] == [sys.executable, "-m", "prefect"] and command[4:6] == ["server", "start"]
    shown = subprocess.run([*command[:3], "server", "start", "--help"], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    for option in (word for word in command if word.startswith("--")):
        assert re.search(rf"\s{re.escape(option)}\s", shown.stdout), option
    settings = get_current_settings().to_environment_variables(exclude_unset=False)
    assert set(server.SERVICES_OFF) <= set(settings)
    # The services that record the run stay on.
    assert not {"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED",
                "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"} & set(server.SERVICES_OFF)


def test_run_verbose_shows_prefects_and_dbts_lines_too(prefect_server, paths, capsys):
    drop_sample(paths, "PAN")

    assert main(["run", "--verbose"]) == 0

    out, err = capsys.readouterr()
    [log] = (paths.root / "logs").glob("run-*.log")
    assert out.splitlines()[-1] == f"log: {log}"
    for expected in ("Beginning flow run", "prefect.task_runs [validate-", "dbt: Running with dbt=",
                     "ingest: reading PAN/", "Finished in state Completed()"):
        assert expected in err, expected
    # The same lines are in the log file.
    text = log.read_text(encoding="utf-8")
    assert "Beginning flow run" in text and "dbt: Running with dbt=" in text
