"""Shared fixtures: a throw-away data directory per test, one Prefect server per session."""
from __future__ import annotations

import email
import email.policy
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# A developer's own `hmo serve` must not take the suite's checks (tests that want one set it).
os.environ.pop("HMO_SERVE_URL", None)

from hmo.settings import PROJECT_ROOT, Paths  # noqa: E402

SAMPLES = PROJECT_ROOT / "data" / "samples"
STANDARD_HEADER = "reporting_country,period,flow_type,border_point,counterpart_country,sex,age,nationality,count,obs_status"


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv("HMO_DATA_DIR", str(tmp_path / "data"))
    result = Paths(tmp_path / "data")
    result.ensure()
    return result


def drop(paths: Paths, country: str, name: str, content: str | bytes) -> Path:
    """Put a file into a country's inbox as a statistician would."""
    target = paths.inbox / country / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        target.write_text(content, encoding="utf-8")
    else:
        target.write_bytes(content)
    return target


def drop_sample(paths: Paths, country: str) -> Path:
    source = next((SAMPLES / country).iterdir())
    target = paths.inbox / country / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def start_serve(paths: Paths, cwd: Path, env: dict[str, str], stdout, stderr: Path,
                *options: str) -> tuple[subprocess.Popen, dict]:
    """A real `hmo serve --port 0 [options]` for `paths`, and its serve.json once it listens (a failure names
    its stderr). The caller stops it."""
    from flows import service

    with stderr.open("wb") as err:
        process = subprocess.Popen([str(Path(sys.executable).parent / "hmo"), "serve", "--port", "0", *options],
                                   cwd=cwd, stdout=stdout, stderr=err, env=env)
    deadline = time.monotonic() + 150
    while (state := service.read_state(paths)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"hmo serve did not start (exit {process.poll()}): {stderr.read_text()}")
        time.sleep(0.1)
    return process, state


class Inbox:
    """What a local SMTP server (aiosmtpd) received: the report's e-mail in tests/report/."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch):
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd's controller checks its own port, so it needs a real one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("HMO_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("HMO_SMTP_PORT", str(port))
        monkeypatch.setenv("HMO_SMTP_STARTTLS", "0")  # a server on this machine, offering none
        monkeypatch.setenv("HMO_SMTP_FROM", "observatorio@hmo.example")
        monkeypatch.setenv("HMO_REPORT_TO", "ppt@cancilleria.example, secretaria@crm.example")
        yield inbox
    finally:
        controller.stop()


def parsed(raw: bytes) -> "email.message.EmailMessage":
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


