"""One writer at a time, refused at once; a run that ends however it ends takes its Prefect server along."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest
from test_server import _servers_of, hmo_env

from flows.writer import WriterBusy, writer_lock
from hmo.settings import PROJECT_ROOT

SINCE = r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
# Python's start and `import flows.cli` take ~0.4 s; a loaded machine doubles that.
REFUSAL_SECONDS = 2.0


def _start(*args: str, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flows.cli", *args], env=hmo_env(tmp_path), cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


def _holds_lock(run: subprocess.Popen[str], tmp_path: Path) -> bool:
    lock = tmp_path / "data" / "writer.lock"
    return lock.exists() and f'"pid": {run.pid},' in lock.read_text()


def _serving(run: subprocess.Popen[str], tmp_path: Path) -> bool:
    """True once the run's temporary Prefect server answers (found by its PREFECT_HOME, as in test_server)."""
    for pid in _servers_of(tmp_path):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        # The server is `prefect server start --port N` (flows/server.py).
        if pid != str(run.pid) and "server" in argv and "--port" in argv:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{argv[argv.index('--port') + 1]}/api/health",
                                            timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False
    return False


def _timed(*args: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "flows.cli", *args], env=hmo_env(tmp_path), cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    return result, time.monotonic() - started


# -- the lock itself, without Prefect ------------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from flows.writer import writer_lock
with writer_lock(Path(sys.argv[1]), "hmo build"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(lock: Path, seconds: float) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(seconds)], cwd=PROJECT_ROOT,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    return child


def test_the_lock_admits_one_holder_and_names_it(tmp_path):
    lock = tmp_path / "data" / "writer.lock"

    with writer_lock(lock, "hmo run"):
        # A second descriptor is a second holder to flock, even in the same process.
        with pytest.raises(WriterBusy, match=rf"^another hmo run \(pid {os.getpid()}, {SINCE}\) is writing "
                                             r"the warehouse; try again when it ends, or pass --wait SECONDS$"):
            with writer_lock(lock, "hmo build"):
                pass
    with writer_lock(lock, "hmo build"):
        assert f'"pid": {os.getpid()}, "command": "hmo build"' in lock.read_text()
    assert lock.read_text() == ""  # released: nobody is named


def test_a_waiting_writer_gets_the_lock_when_the_holder_ends_or_gives_up(tmp_path):
    lock = tmp_path / "writer.lock"
    holder = _holder(lock, 1.5)
    held_since = time.monotonic()
    said: list[str] = []

    with pytest.raises(WriterBusy, match=rf"^another hmo build \(pid {holder.pid}, {SINCE}\) is still writing "
                                         r"the warehouse after 0.3 s"):
        with writer_lock(lock, "hmo run", wait=0.3, on_wait=said.append):
            pass
    with writer_lock(lock, "hmo run", wait=30, on_wait=said.append):
        assert time.monotonic() - held_since > 1.0  # we got it when the holder let go
    holder.wait(timeout=10)
    assert len(said) == 2
    assert re.fullmatch(rf"hmo: waiting up to 30 s for hmo build \(pid {holder.pid}, {SINCE}\) "
                        r"to finish writing the warehouse", said[1])


def test_a_killed_holder_blocks_nobody(tmp_path):
    lock = tmp_path / "writer.lock"
    holder = _holder(lock, 60)
    holder.kill()
    holder.wait()
    assert f'"pid": {holder.pid},' in lock.read_text()  # the file says who held it last ...

    started = time.monotonic()
    with writer_lock(lock, "hmo run"):  # ... but the kernel dropped the lock with the process
        assert time.monotonic() - started < 0.5


def test_hmo_refuses_a_second_writer_within_two_seconds_in_one_line(tmp_path):
    with writer_lock(tmp_path / "data" / "writer.lock", "hmo run"):
        refused, seconds = _timed("run", tmp_path=tmp_path)
        gave_up, _ = _timed("ingest", "--wait", "0.5", tmp_path=tmp_path)

    assert refused.returncode == 1
    assert re.fullmatch(rf"hmo: another hmo run \(pid {os.getpid()}, {SINCE}\) is writing the warehouse; "
                        r"try again when it ends, or pass --wait SECONDS\n", refused.stderr), refused.stderr
    assert seconds < REFUSAL_SECONDS, f"refused after {seconds:.2f} s"
    assert gave_up.returncode == 1
    assert gave_up.stderr.splitlines()[0].startswith(f"hmo: waiting up to 0.5 s for hmo run (pid {os.getpid()}")
    assert gave_up.stderr.splitlines()[1].startswith(f"hmo: another hmo run (pid {os.getpid()}")
    assert len(gave_up.stderr.splitlines()) == 2


def test_ctrl_c_while_waiting_for_the_lock_is_one_line(tmp_path):
    with writer_lock(tmp_path / "data" / "writer.lock", "hmo run"):
        waiting = _start("ingest", "--wait", "60", tmp_path=tmp_path)
        assert waiting.stderr is not None
        assert waiting.stderr.readline().startswith("hmo: waiting up to 60 s for hmo run")
        waiting.send_signal(signal.SIGINT)
        _, rest = waiting.communicate(timeout=10)

    assert waiting.returncode == 128 + signal.SIGINT
    assert rest == "hmo: stopped (signal 2)\n"


# -- whole runs, each with its own temporary Prefect server --------------------------------

def test_writers_take_turns_even_after_one_was_killed(tmp_path):
    # SIGKILL skips every cleanup of the run: the kernel must end its server and drop its lock.
    killed = _start("run", tmp_path=tmp_path)
    _until(lambda: _serving(killed, tmp_path), 120, "the first run's Prefect server answers")
    killed.kill()
    killed.wait()
    _until(lambda: not _servers_of(tmp_path), 10, "the killed run's Prefect server is gone")

    first = _start("demo", tmp_path=tmp_path)
    _until(lambda: _holds_lock(first, tmp_path), 5, "the next run takes the lock the killed one left")
    second, seconds = _timed("run", tmp_path=tmp_path)
    waiting = _start("run", "--wait", "300", tmp_path=tmp_path)
    first_out, first_err = first.communicate(timeout=300)
    waiting_out, waiting_err = waiting.communicate(timeout=300)

    assert second.returncode == 1
    assert len(second.stderr.splitlines()) == 1, second.stderr
    assert second.stderr.startswith(f"hmo: another hmo demo (pid {first.pid}, since "), second.stderr
    assert seconds < REFUSAL_SECONDS, f"refused after {seconds:.2f} s"
    assert first.returncode == 0, first_err
    assert "accepted  PAN/" in first_out
    assert waiting.returncode == 0, waiting_err
    assert waiting_err.startswith(f"hmo: waiting up to 300 s for hmo demo (pid {first.pid}, since "), waiting_err
    # One line says it waited; the rest is its own run's progress, stage by stage.
    assert [line for line in waiting_err.splitlines() if line.startswith("hmo: ")] == [waiting_err.splitlines()[0]]
    assert "report: " in waiting_out
    _until(lambda: not _servers_of(tmp_path), 10, "no server outlives its run")


def test_sigterm_stops_a_run_in_one_line_and_takes_its_server_along(tmp_path):
    run = _start("demo", tmp_path=tmp_path)
    # The warehouse appears with the flow's first task: Prefect's own SIGTERM handler is in place then.
    _until(lambda: (tmp_path / "data" / "warehouse.duckdb").exists(), 120, "the flow starts")
    assert _serving(run, tmp_path)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)

    assert run.returncode == 128 + signal.SIGTERM
    # The progress lines of the stages begun, then one line: no traceback.
    *progress, last = err.splitlines()
    assert last == "hmo: stopped (signal 15)"
    assert progress and all(": " in line and "Traceback" not in line for line in progress), err
    assert not _servers_of(tmp_path)
    assert (tmp_path / "data" / "writer.lock").read_text() == ""  # released on the way out, not by the kernel
