"""`hmo run` on a machine with no Prefect server: the run brings its own and takes it away."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flows.server import prefect_api


def hmo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A data directory and Prefect home of the test's own, and no API: each run starts its own server."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
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
    assert (tmp_path / "prefect" / "prefect.db").exists()  # the flow run was recorded by that server
    assert not _servers_of(tmp_path)


def test_a_server_that_cannot_start_is_one_clear_error(tmp_path):
    result = _hmo("run", tmp_path=tmp_path,
                  PREFECT_SERVER_DATABASE_CONNECTION_URL="sqlite+aiosqlite:////nonexistent/dir/prefect.db")

    assert result.returncode == 1
    assert result.stderr.startswith("hmo: the temporary Prefect server stopped at start-up"), result.stderr
    assert "unable to open database file" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not _servers_of(tmp_path)


def test_a_configured_api_is_used_as_it_is(prefect_server, tmp_path):
    from prefect.settings import get_current_settings

    configured = get_current_settings().api.url
    with prefect_api(tmp_path / "server.log") as url:
        assert url == configured
