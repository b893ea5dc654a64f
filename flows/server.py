"""The Prefect API a run talks to: the configured one, or a temporary server started early.

With no API configured, Prefect starts a temporary server itself, but only once
the flow is called: the run then imports Prefect's server code (~3 s) and
waits for the server to boot (~4 s) before its first task (docs/benchmarks.md).
Started here, as its own process and before the pipeline's heavy imports, the
server boots on the other core while this process does `meanwhile` (importing
dbt and Great Expectations), and this process never imports the server code.

The server is launched the way Prefect 3.8 launches its own temporary server
(`prefect.server.api.server.SubprocessASGIServer`): uvicorn on Prefect's app
factory, UI off, ephemeral mode, the same database (PREFECT_HOME).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Callable, Iterator

from ingest.errors import HmoError

_PORT_IN_USE = 3  # uvicorn's exit status when it cannot bind
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class PrefectServerFailed(HmoError):
    """The temporary Prefect server did not come up."""


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_taken(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel send the server SIGTERM when this process dies.

    Prefect's own temporary server stops only through `atexit`, and so would this
    one through `prefect_api`'s `finally`: neither runs when the run is SIGKILLed
    (the OOM killer, `kill -9`, a CI timeout), and the server would live on, holding
    its port and PREFECT_HOME's database. PR_SET_PDEATHSIG survives the exec into
    uvicorn. Linux only; elsewhere the server stops with a clean exit only.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    # Looked up here, not in the child: between fork and exec only the call itself should run.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return arm


def _launch(port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    import prefect
    from prefect.settings import get_current_settings

    # The death signal follows the *thread* that forks: launch from the thread
    # that outlives the server (prefect_api runs in the command's main thread).
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
         "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "error", "--lifespan", "on"],
        env={
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent(),
    )


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PrefectServerFailed(
                f"the temporary Prefect server stopped at start-up (status {process.returncode}): "
                f"{_last_line(log)} (whole output: {log})")
        if _healthy(url):
            return
        time.sleep(0.05)
    raise PrefectServerFailed(
        f"the temporary Prefect server did not answer within {timeout:.0f} s (its output: {log}); "
        "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or set PREFECT_API_URL to a running server"
    )


# Prefect's own default (20 s) is missed on a busy 2-core machine: the server
# took over 20 s beside a test suite here, and the run then failed for nothing.
# A value the operator sets (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS) wins.
_STARTUP_SECONDS = 90.0


def _startup_timeout(configured: float) -> float:
    return configured if "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in os.environ else _STARTUP_SECONDS


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("sqlalchemy.exc", "OSError", "RuntimeError", "ERROR"))]
    return (errors or lines or ["no output"])[-1].strip()


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The flow's logs and events are sent by background workers: let them
    # reach the server before it goes, as Prefect's own test harness does.
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    EventsWorker.drain_all(timeout=5)
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def prefect_api(log: Path, meanwhile: Callable[[], None] = lambda: None) -> Iterator[str | None]:
    """Yield the API URL flows will use; a server started here (output in `log`) stops on exit.

    Yields None when Prefect is left to its own devices: ephemeral mode is off
    (Prefect then reports the missing API itself).
    """
    from prefect.context import refresh_global_settings_context
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url:
        yield settings.api.url
        return
    if not settings.server.ephemeral.enabled:
        yield None
        return

    log.parent.mkdir(parents=True, exist_ok=True)
    output = log.open("wb")
    port = _free_port()
    process = _launch(port, output)
    url = f"http://127.0.0.1:{port}/api"
    previous = os.environ.get("PREFECT_API_URL")
    try:
        meanwhile()
        if process.poll() == _PORT_IN_USE and _port_taken(port):  # taken since _free_port looked
            port = _free_port()
            process = _launch(port, output)
            url = f"http://127.0.0.1:{port}/api"
        _wait_until_healthy(process, url, _startup_timeout(settings.server.ephemeral.startup_timeout_seconds), log)
        os.environ["PREFECT_API_URL"] = url
        refresh_global_settings_context()
        yield url
    finally:
        _stop(process)
        output.close()
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        refresh_global_settings_context()
