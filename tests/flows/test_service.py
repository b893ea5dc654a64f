"""`hmo serve`, and `hmo check` handed to it: the local check's answer, from a process that stays up.

One real service (a `hmo serve` subprocess, uvicorn and all) for the module;
the endpoint's own rules are also tested on the app alone (FastAPI's
TestClient) with a stand-in for the check.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SAMPLES, drop_sample, start_serve
from flows import check as checking
from flows import service
from flows.cli import main
from hmo.errors import HmoError
from hmo.settings import Paths

HMO = Path(sys.executable).parent / "hmo"
ACCEPTED, REJECTED = "PAN", "GTM"  # the bundled samples: one passes every rule, one breaks three
TOKEN = "t0ken-for-the-test-client"
LIMIT = 64 * 1024  # the test service's HMO_SERVE_MAX_BYTES: more than a sample, less than 2,000 rows
HEAVY = ("great_expectations", "dbt", "fastapi", "uvicorn", "pandas", "prefect")
# `hmo check` as the `hmo` script runs it (flows.cli.main), then which heavy packages it imported.
CLIENT = "\n".join([
    "import sys",
    "from flows.cli import main",
    "code = main(sys.argv[1:])",
    f"heavy = sorted({{name.split('.')[0] for name in sys.modules}} & {set(HEAVY)!r})",
    "print('imported: ' + ','.join(heavy), file=sys.stderr)",
    "sys.exit(code)",
])


def sample(country: str) -> Path:
    return next((SAMPLES / country).iterdir())


@dataclass
class Running:
    process: subprocess.Popen
    paths: Paths
    url: str
    base: Path      # the service's working directory
    scratch: Path   # its TMPDIR: base/outside/tmp, so a name that climbed two levels would land in base/
    stderr: Path
    token: str      # what /check asks for, from serve.json


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HMO_DATA_DIR": str(root), **extra}
    env.pop(service.URL_ENV, None)
    env.pop(service.TOKEN_ENV, None)
    env.pop("PREFECT_API_URL", None)  # the service starts a Prefect server of its own
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Running:
    base = tmp_path_factory.mktemp("serve")
    paths = Paths(base / "data")
    scratch = base / "outside" / "tmp"
    scratch.mkdir(parents=True)
    stdout, stderr = base / "serve.out", base / "serve.err"
    with stdout.open("wb") as out:
        # Its own PREFECT_HOME: the service's Prefect server keeps its database there.
        process, state = start_serve(paths, base, _env(paths.root, HMO_SERVE_MAX_BYTES=str(LIMIT), TMPDIR=str(scratch),
                                                       PREFECT_HOME=str(base / "prefect")), out, stderr)
    try:
        yield Running(process, paths, state["url"], base, scratch, stderr, state["token"])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _post(url: str, token: str | None, body: bytes | object, **query: object) -> tuple[int, dict]:
    from urllib.parse import urlencode

    request = urllib.request.Request(f"{url}/check?{urlencode(query)}", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _hand_over(running: Running, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLIENT, *args], capture_output=True, text=True, timeout=120,
                          env={**_env(running.paths.root), **env})


def _local(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, root: Path,
           *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("HMO_DATA_DIR", str(root))
    monkeypatch.delenv(service.URL_ENV, raising=False)
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _with_template(running: Running, root: Path) -> Paths:
    """A data directory with the service's check template (a local check in it needs no dbt)."""
    paths = Paths(root)
    paths.work.mkdir(parents=True)
    for template in running.paths.work.glob(f"{checking.TEMPLATE_PREFIX}*.duckdb"):
        shutil.copyfile(template, paths.work / template.name)
    return paths


def _write_state(paths: Paths, url: str, pid: int) -> None:
    service.state_path(paths).write_text(json.dumps({"url": url, "pid": pid, "started_at": "earlier"}))


def _closed_url() -> str:
    import socket

    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _scratch_left(running: Running) -> list[Path]:
    # Prefect's Runner (the monthly schedule) keeps a folder of its own there for as long as it serves.
    return [p for p in running.scratch.iterdir() if p.name != "runner_storage"]


def _receipts(paths: Paths, country: str) -> list[Path]:
    folder = paths.outbox / country
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


# --------------------------------------------------------------------------- the real service


def test_the_service_says_where_it_listens_and_answers_health(served):
    state = service.read_state(served.paths)
    assert state["pid"] == served.process.pid and state["url"].startswith("http://127.0.0.1:")
    health = _get(f"{served.url}/health")
    assert (health["status"], health["service"], health["pid"]) == ("ok", "hmo serve", served.process.pid)
    assert (health["data_dir"], health["max_bytes"]) == (str(served.paths.root), LIMIT)


@pytest.mark.parametrize("country, code, verdict", [(ACCEPTED, 0, "ACEPTADO / ACCEPTED"),
                                                    (REJECTED, 2, "RECHAZADO / REJECTED")])
def test_a_check_handed_to_the_service_prints_what_the_local_check_prints(served, monkeypatch, capsys,
                                                                          country, code, verdict):
    handed = _hand_over(served, "check", str(sample(country)))
    local_code, local_out, local_err = _local(monkeypatch, capsys, served.paths.root,
                                              "check", "--local", str(sample(country)))
    assert (handed.returncode, local_code) == (code, code)
    assert handed.stdout == local_out  # profile, preview table and receipt, byte for byte
    assert f"Resultado / Verdict: {verdict}" in handed.stdout and checking.DRY_RUN_SUBMISSION in handed.stdout
    assert f"checked by hmo serve at {served.url}" in handed.stderr.splitlines()
    assert "imported: " in handed.stderr.splitlines()  # no Great Expectations, dbt or FastAPI on this path
    assert "checked by" not in local_err


def test_a_file_the_check_refuses_is_a_422_and_the_same_one_line_error(served, monkeypatch, capsys):
    status, answer = _post(served.url, served.token, sample(ACCEPTED).read_bytes(), country="XYZ", name="x.csv")
    assert status == 422 and answer["error"].startswith("x.csv: ") and "XYZ" in answer["error"]
    assert str(served.scratch) not in answer["error"]  # the name as sent, not where it was put
    handed = _hand_over(served, "check", "--country", "XYZ", str(sample(ACCEPTED)))
    local_code, _, local_err = _local(monkeypatch, capsys, served.paths.root,
                                      "check", "--local", "--country", "XYZ", str(sample(ACCEPTED)))
    assert handed.returncode == local_code == 1
    assert handed.stderr.splitlines()[0] == local_err.strip()
    assert local_err.startswith(f"hmo: {sample(ACCEPTED)}: ")


@pytest.mark.parametrize("name", ["../../etc/passwd", "..\\..\\passwd.csv", "../../climbed.csv", ".hidden",
                                  ".", "..", "", "nul\x00.csv", "line\nbreak.csv", "bidi\u202ecsv.txt",
                                  "x" * 300 + ".csv"])
def test_a_name_that_is_not_just_a_name_is_refused_and_nothing_is_written(served, name):
    status, answer = _post(served.url, served.token, sample(ACCEPTED).read_bytes(), country=ACCEPTED, name=name)
    assert status == 400 and answer["error"].startswith("name: ")
    assert not (served.base / "etc").exists() and not list(served.base.rglob("*climbed*"))
    assert not list(served.base.rglob("passwd*"))
    assert sorted(p.name for p in served.base.iterdir()) == ["data", "outside", "prefect", "serve.err", "serve.out"]
    assert [p.name for p in (served.base / "outside").iterdir()] == ["tmp"]
    assert not _scratch_left(served)


def test_an_unusual_but_plain_name_is_checked_under_that_name_and_its_folder_removed(served):
    name = "entradas enero – ñandú (v2).csv"
    status, answer = _post(served.url, served.token, sample(ACCEPTED).read_bytes(), country=ACCEPTED, name=name)
    assert status == 200 and answer["verdict"] == "accepted"
    assert f"Archivo / File: {name}  ({ACCEPTED})" in answer["receipt"]
    assert not _scratch_left(served)  # the request's temporary folder, and the check's, are gone


def test_a_body_over_the_limit_is_a_413_and_hmo_check_then_checks_locally(served, tmp_path, monkeypatch, capsys):
    status, answer = _post(served.url, served.token, b"x" * (LIMIT + 1), country=ACCEPTED, name="big.csv")
    assert status == 413 and str(service.MAX_BYTES_ENV) in answer["error"]
    # Chunked: no length declared, counted as it arrives.
    status, answer = _post(served.url, served.token, iter([b"x" * 4096] * (LIMIT // 4096 + 1)), country=ACCEPTED, name="big.csv")
    assert status == 413
    assert not _scratch_left(served)

    from bench.generate import generate

    big = tmp_path / ACCEPTED / "dos_mil_filas.csv"
    big.parent.mkdir()
    generate(2_000, big, country=ACCEPTED)
    assert big.stat().st_size > LIMIT
    code, out, err = _local(monkeypatch, capsys, served.paths.root, "check", str(big), "--rows", "2")
    assert code == 0 and "ACEPTADO / ACCEPTED" in out
    assert "is larger" in err and "checking here instead" in err and "checked by" not in err


def test_a_serve_json_left_by_a_dead_service_is_ignored(served, tmp_path, monkeypatch, capsys):
    paths = _with_template(served, tmp_path / "data")
    _write_state(paths, _closed_url(), _dead_pid())
    code, out, err = _local(monkeypatch, capsys, paths.root, "check", str(sample(ACCEPTED)))
    assert code == 0 and "ACEPTADO / ACCEPTED" in out
    assert err == ""  # no error, no note: nothing was running


def test_a_service_that_does_not_answer_is_said_and_the_check_runs_locally(served, tmp_path, monkeypatch, capsys):
    paths = _with_template(served, tmp_path / "data")
    url = _closed_url()
    _write_state(paths, url, os.getpid())  # a live process (a reused pid, say), nothing listening
    code, out, err = _local(monkeypatch, capsys, paths.root, "check", str(sample(REJECTED)))
    assert code == 2 and "RECHAZADO / REJECTED" in out
    assert err.startswith(f"hmo: hmo serve at {url} (pid {os.getpid()}") and "checking here instead" in err

    monkeypatch.setenv(service.URL_ENV, url)
    capsys.readouterr()
    assert main(["check", str(sample(ACCEPTED))]) == 0
    err = capsys.readouterr().err
    assert f"({service.URL_ENV}) does not answer" in err and "checking here instead" in err


def test_HMO_SERVE_URL_hands_the_check_to_that_service(served, tmp_path):
    handed = _hand_over(served, "check", str(sample(ACCEPTED)), HMO_DATA_DIR=str(tmp_path / "elsewhere"),
                        **{service.URL_ENV: served.url + "/", service.TOKEN_ENV: served.token})
    assert handed.returncode == 0 and "ACEPTADO / ACCEPTED" in handed.stdout
    assert f"checked by hmo serve at {served.url}" in handed.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_a_check_without_the_services_token_is_refused_before_it_is_read(served):
    before = _get(f"{served.url}/health")["checks"]
    for token in (None, "a-guess", served.token + "x"):
        status, answer = _post(served.url, token, sample(ACCEPTED).read_bytes(), country=ACCEPTED, name="x.csv")
        assert status == 401 and "token" in answer["error"]
    assert _get(f"{served.url}/health")["checks"] == before
    # The token is in serve.json, which the service's user alone may read.
    assert service.state_path(served.paths).stat().st_mode & 0o077 == 0


def test_a_check_handed_over_without_the_token_runs_here_and_says_why(served, tmp_path):
    handed = _hand_over(served, "check", str(sample(ACCEPTED)), HMO_DATA_DIR=str(tmp_path / "elsewhere"),
                        **{service.URL_ENV: served.url})
    assert handed.returncode == 0 and "ACEPTADO / ACCEPTED" in handed.stdout
    assert f"hmo serve at {served.url} answered 401" in handed.stderr and "checking here instead" in handed.stderr


def test_a_second_service_for_the_same_data_directory_is_refused(served):
    second = subprocess.run([str(HMO), "serve", "--port", "0"], capture_output=True, text=True, timeout=60,
                            env=_env(served.paths.root))
    assert second.returncode == 1
    assert second.stderr.strip() == (f"hmo: another hmo serve already serves {served.paths.root} "
                                     f"at {served.url} (pid {served.process.pid})")
    assert service.read_state(served.paths)["pid"] == served.process.pid


def test_a_file_dropped_into_the_inbox_gets_its_receipt_with_no_command_run(served):
    dropped = drop_sample(served.paths, ACCEPTED)
    deadline = time.monotonic() + 240
    while not _receipts(served.paths, ACCEPTED):
        assert time.monotonic() < deadline, f"no receipt for {dropped.name}: {served.stderr.read_text()[-3000:]}"
        assert served.process.poll() is None
        time.sleep(0.1)
    receipt = json.loads(_receipts(served.paths, ACCEPTED)[0].read_text())
    assert (receipt["file_name"], receipt["status"]) == (dropped.name, "accepted")
    assert not dropped.exists()  # archived
    deadline = time.monotonic() + 60
    while _get(f"{served.url}/health")["inbox_runs"] != 1:  # the run's report follows its receipts
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_the_served_monthly_deployment_runs_the_pipeline_and_writes_the_reports_pdfs(served):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows import schedule

    api = service.read_state(served.paths)["prefect_api"]
    assert api and api.startswith("http://127.0.0.1:")
    # Started now instead of on the 16th: the service's runner takes it like a scheduled one.
    with temporary_settings(updates={PREFECT_API_URL: api}):
        run = run_deployment(f"hmo-monthly/{schedule.DEPLOYMENT}", timeout=300)
    assert run.state_name == "Completed", (run.state.message, served.stderr.read_text()[-3000:])
    month = served.paths.reports / "2024-02"  # the latest month the PAN sample holds
    assert sorted(p.name for p in month.glob("report.*.pdf")) == ["report.en.pdf", "report.es.pdf"]


def test_hmo_run_beside_the_service_uses_its_prefect_server(served):
    # A second server on PREFECT_HOME's database would be seconds of start-up and a second writer of it.
    api = service.read_state(served.paths)["prefect_api"]
    ran = subprocess.run([str(HMO), "run"], capture_output=True, text=True, timeout=300, env=_env(served.paths.root))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "start: done in " in ran.stderr and f": hmo serve's Prefect server at {api}" in ran.stderr
    assert "no new files in the inbox" in ran.stdout


def test_sigterm_stops_the_service_cleanly(served):
    # Last: it stops the module's service.
    prefect = service.read_state(served.paths)["prefect_api"]
    served.process.send_signal(signal.SIGTERM)
    code = served.process.wait(timeout=60)
    assert code in (0, 128 + signal.SIGTERM)
    stderr = served.stderr.read_text()
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "hmo: stopped (signal 15)"
    assert not service.state_path(served.paths).exists()
    with pytest.raises(OSError):
        _get(f"{served.url}/health")
    with pytest.raises(OSError):  # its Prefect server stopped with it
        _get(f"{prefect}/health")


# --------------------------------------------------------------------------- the app alone


@pytest.fixture
def client(tmp_path, monkeypatch):
    pytest.importorskip("httpx")
    with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its TestClient; httpx 0.28 works
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    calls: list[tuple[Path, str, int]] = []
    running, most = [0], [0]
    guard = threading.Lock()

    def fake_check(paths: Paths, file: Path, country: str, preview_rows: int = 10) -> checking.CheckResult:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            calls.append((file, file.read_text(), preview_rows))
            if file.read_text() == "refuse me":
                raise HmoError(f"{file}: not a file this check reads")
            time.sleep(0.1)
            return checking.CheckResult("standard", ["a", "when", "amount", "nothing", "ratio"],
                                        [(1, dt.date(2024, 1, 31), decimal.Decimal("1.50"), None, float("nan"))],
                                        "accepted", "receipt text\n", [{"rule": "R01", "value": dt.date(2024, 1, 1)}])
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(checking, "check", fake_check)
    app = service.create_app(Paths(tmp_path / "data"), token=TOKEN, max_bytes=100, say=lambda line: None)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as test_client:
        test_client.calls, test_client.most = calls, most  # type: ignore[attr-defined]
        yield test_client


def test_the_answer_is_json_that_prints_as_the_local_preview(client):
    answer = client.post("/check", params={"country": "pan", "name": "a.csv", "rows": 3}, content=b"a,b\n")
    assert answer.status_code == 200
    body = answer.json()
    assert body["preview"] == [[1, "2024-01-31", "1.50", None, "nan"]]
    assert body["problems"] == [{"rule": "R01", "value": "2024-01-01"}]
    assert (body["verdict"], body["receipt"], body["profile"]) == ("accepted", "receipt text\n", "standard")
    file, text, rows = client.calls[0]
    assert (file.name, text, rows) == ("a.csv", "a,b\n", 3)
    assert not file.parent.exists()  # the request's temporary folder is gone
    # Each cell prints as the local table prints it (str of the value).
    local = checking.CheckResult("standard", ["d"], [(dt.date(2024, 1, 31), decimal.Decimal("1.50"))], "accepted", "")
    assert [str(v) for v in local.preview[0]] == [str(v) for v in local.as_json()["preview"][0]]


def test_a_refused_file_is_a_422_naming_the_file_as_sent(client):
    answer = client.post("/check", params={"country": "PAN", "name": "b.csv"}, content=b"refuse me")
    assert answer.status_code == 422
    assert answer.json() == {"error": "b.csv: not a file this check reads"}


@pytest.mark.parametrize("params, status", [
    ({"country": "PA", "name": "a.csv"}, 400), ({"country": "P4N", "name": "a.csv"}, 400),
    ({"country": "ÑAN", "name": "a.csv"}, 400), ({"name": "a.csv"}, 400), ({"country": "PAN"}, 400),
    ({"country": "PAN", "name": "a.csv", "rows": -1}, 400), ({"country": "PAN", "name": "a.csv", "rows": "x"}, 400),
    ({"country": "PAN", "name": "a/b.csv"}, 400)])
def test_malformed_requests_are_400_with_an_error(client, params, status):
    answer = client.post("/check", params=params, content=b"a")
    assert answer.status_code == status and answer.json()["error"]
    assert not client.calls


def test_the_size_limit_is_the_apps(client):
    assert client.post("/check", params={"country": "PAN", "name": "a.csv"}, content=b"x" * 101).status_code == 413
    assert client.post("/check", params={"country": "PAN", "name": "a.csv"}, content=b"x" * 100).status_code == 200
    assert client.get("/health").json()["max_bytes"] == 100


def test_checks_run_one_at_a_time(client):
    answers: list[int] = []

    def one(i: int) -> None:
        answers.append(client.post("/check", params={"country": "PAN", "name": f"{i}.csv"}, content=b"a").status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 4 and len(client.calls) == 4
    assert client.most == [1]


def test_a_bad_size_limit_in_the_environment_is_one_clear_error(monkeypatch):
    monkeypatch.setenv(service.MAX_BYTES_ENV, "lots")
    with pytest.raises(HmoError, match=service.MAX_BYTES_ENV):
        service.configured_max_bytes()
    monkeypatch.setenv(service.MAX_BYTES_ENV, "1_000")
    assert service.configured_max_bytes() == 1000
