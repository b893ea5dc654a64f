"""The Prefect API a run talks to: the configured one, or a `prefect server start` of its own.

With no API configured Prefect starts a temporary server itself, but only once
the flow is called (the run then waits for it before its first task), and stops
it only through `atexit`: a run that is killed leaves it behind, holding its
port and PREFECT_HOME's database. Instead, `hmo run` starts Prefect's documented
server command as a child process, before the pipeline's heavy imports: it boots
on the other core while this process imports dbt and Great Expectations
(`meanwhile`), dies with this process however that ends (PR_SET_PDEATHSIG), and
is stopped at the end of the run.

Everything it is started with is public: `prefect server start`'s options
(`prefect server start --help`) and Prefect settings. It listens on 127.0.0.1
on a free port without the UI, and the services that only a resident server
needs (scheduler, late runs, foreman, cancellation clean-up, pause expirations,
repossessor, clean-up reconciler) are off, as on Prefect's own temporary server;
the services that record runs (task run recorder, event persister) stay on. The
run's history goes to the database of PREFECT_HOME, as with Prefect's own.
tests/flows/test_server.py breaks when a Prefect upgrade renames any of these.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from hmo.errors import HmoError

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

SERVER_OPTIONS = ["--no-ui", "--no-scheduler", "--no-late-runs", "--analytics-off", "--log-level", "WARNING"]
# A resident server (`hmo serve`'s schedule) keeps the scheduler, which creates the deployment's runs.
RESIDENT_OPTIONS = [option for option in SERVER_OPTIONS if option not in ("--no-scheduler", "--no-late-runs")]
# Settings of the services a one-run server has no use for (each defaults to on in `prefect server start`).
SERVICES_OFF = {f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false"
                for name in ("FOREMAN", "CANCELLATION_CLEANUP", "CLEANUP_RECONCILER", "PAUSE_EXPIRATIONS",
                             "REPOSSESSOR")}


class PrefectServerFailed(HmoError):
    """The temporary Prefect server did not come up."""


@dataclass(frozen=True)
class PrefectApi:
    url: str | None  # None: no API, and Prefect may not start one (it then says so itself)
    temporary: bool  # started for this run, stopped at its end


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

    `prefect_api`'s `finally` stops the server on any exit Python sees, but not
    when the run is SIGKILLed (the OOM killer, `kill -9`, a CI timeout): the
    server would live on. PR_SET_PDEATHSIG survives the exec into Python, and
    `prefect server start` serves in its own process (uvicorn in-process, one
    worker), so that process is the whole server. Linux only; elsewhere the
    server stops with a clean exit only.
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


def server_command(port: int, resident: bool = False) -> list[str]:
    # --no-prompt: never ask which profile to switch to (it would wait on the run's terminal).
    return [sys.executable, "-m", "prefect", "--no-prompt", "server", "start",
            "--host", "127.0.0.1", "--port", str(port), *(RESIDENT_OPTIONS if resident else SERVER_OPTIONS)]


def _launch(port: int, log: IO[bytes], resident: bool = False) -> subprocess.Popen[bytes]:
    from prefect.settings import get_current_settings

    # The death signal follows the *thread* that forks: launch from the thread
    # that outlives the server (prefect_api runs in the command's main thread).
    return subprocess.Popen(
        server_command(port, resident),
        env={
            **os.environ,
            # Settings this process has from a profile or in code (a database URL, say) hold for the server too.
            **get_current_settings().to_environment_variables(exclude_unset=True),
            **SERVICES_OFF,
        },
        stdin=subprocess.DEVNULL,
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


_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception): ")


def _last_line(log: Path) -> str:
    """What the server said went wrong: its last exception, else its last ERROR line, else its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    exceptions = [line for line in lines if _EXCEPTION_LINE.match(line)]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (exceptions or errors or lines or ["no output"])[-1]


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The flow's logs and events are sent by background workers: let them
    # reach the server before it goes, as Prefect's own test harness does.
    # `drain_all` is the one name here outside Prefect's documented API (Prefect
    # drains these workers itself only at exit, after this server is gone): the
    # demo test in tests/flows/test_server.py fails if the run's last log lines
    # stop reaching the server, and an import error here fails every run.
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    EventsWorker.drain_all(timeout=5)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def prefect_api(log: Path, meanwhile: Callable[[], None] = lambda: None,
                resident: bool = False, running: str | None = None) -> Iterator[PrefectApi]:
    """The API flows will use while inside; a server started here (output in `log`) stops on exit.

    `meanwhile` runs while the server boots. With ephemeral mode off and no API
    configured, no server is started (Prefect then reports the missing API itself).
    `resident`: the server keeps its scheduler, for deployments with a schedule.
    `running`: the URL of a server already up (`hmo serve`'s), used if it answers:
    no seconds of start-up, and no second server on PREFECT_HOME's database.
    """
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        meanwhile()
        yield PrefectApi(settings.api.url, temporary=False)
        return
    if running is not None and _healthy(running):
        meanwhile()
        with temporary_settings(updates={PREFECT_API_URL: running}):
            yield PrefectApi(running, temporary=False)
        return

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        port = _free_port()
        process = _launch(port, output, resident)
        try:
            meanwhile()
            if process.poll() is not None and _port_taken(port):  # taken since _free_port looked
                port = _free_port()
                process = _launch(port, output, resident)
            url = f"http://127.0.0.1:{port}/api"
            _wait_until_healthy(process, url, _startup_timeout(settings.server.ephemeral.startup_timeout_seconds),
                                log)
            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield PrefectApi(url, temporary=True)
        finally:
            _stop(process)
