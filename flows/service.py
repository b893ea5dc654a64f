"""`hmo serve`: the Observatory's long-running service, and how `hmo check` hands a file to it.

It serves the country portal (portal/), gives each file dropped into the
inbox its receipt (the inbox watcher, flows/watcher.py), runs the monthly
report on its schedule (flows/schedule.py, with a Prefect server of its own
from flows/server.py), and answers `hmo check` (issue #10): a check in a
fresh process pays for importing Great Expectations and the first use of
everything (~4–5 s); a process that stays up pays that once, at start
(`flows.check.warm_up`), and then about a second per file. It is an ordinary
FastAPI app, `create_app`, that uvicorn runs inside the `hmo` process.

- `GET /health`: {"status": "ok", "service": "hmo serve", ...}.
- `POST /check?country=XXX&name=<file name>&rows=N`, the file's bytes as the
  body, with the token: the `flows.check.CheckResult` as JSON (`CheckResult.as_json`). A
  request without the token is a 401; one the service will not take is a 400 (or 413, too large) with
  {"error": ...}; a file the check itself refuses (what `hmo check` reports as
  an error) is a 422 with {"error": ...}.

The name is only a name: one with a path in it (`/` or `\\`), empty, `.`/`..`,
hidden (a leading dot) or with control or format characters is refused; the
body is written under it into a fresh temporary directory, which is removed
after the check.

Checks run one at a time, and take turns with the watcher's runs (one lock):
Great Expectations keeps the context it last made in a process-wide "current
project" (`get_context` sets it, `ValidationDefinition` reads its stores
through it), so two suites running at once would share or swap contexts; and
dbt reads `HMO_WAREHOUSE` from the environment (`harmonise.dbt.DbtProject`
sets it at each invocation), registers its adapters process-wide, and
dbt-duckdb keeps one process-wide connection environment, which
`_release_warehouse` closes after every invocation. A check costs about a
second, so a queue of them is short.

Once it listens, `serve` writes `<data>/work/serve.json` ({"url", "pid",
"started_at", "prefect_api", "token"}) atomically, and removes it on the way out. `hmo check` reads it
(or `HMO_SERVE_URL`) with the standard library alone (`find`, `remote_check`):
the handed-over path never imports Great Expectations, dbt or FastAPI, which
is what makes it fast. A serve.json whose process is gone is ignored; one
whose service does not answer is reported and the check runs locally.

It listens on 127.0.0.1 unless told otherwise and speaks plain HTTP: before
it is reachable from other machines it must sit behind a reverse proxy that
terminates HTTPS. The portal signs its users in; `/check` asks for a token
(`Authorization: Bearer`), new at each start and written in serve.json
(readable by the service's user alone), or HMO_SERVE_TOKEN for clients on
other machines: a process that cannot read the data directory cannot have
files checked (which reads the countries' aliases) or keep the service busy.

This module imports only the standard library at the top; FastAPI, uvicorn and
the check machinery are imported by `create_app` and `serve`. No
`from __future__ import annotations` here: FastAPI reads the endpoints'
annotations, which name classes imported inside `create_app`.
"""
import contextlib
import fcntl
import hmac
import http.client
import ipaddress
import json
import os
import secrets
import socket
import tempfile
import threading
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from flows.writer import process_alive
from hmo.errors import ConfigurationError, HmoError
from hmo.settings import Paths

SERVICE = "hmo serve"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
URL_ENV = "HMO_SERVE_URL"          # hand checks to this service instead of the one serve.json names
TOKEN_ENV = "HMO_SERVE_TOKEN"      # the token /check asks for; by default a new one each start, in serve.json
MAX_BYTES_ENV = "HMO_SERVE_MAX_BYTES"
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
MAX_PREVIEW_ROWS = 1000
MAX_NAME_BYTES = 255               # what a file system takes as one name
PROBE_SECONDS = 2.0                # GET /health: a live service answers in milliseconds
CHECK_SECONDS = 3600.0             # a 10M-row file takes minutes; Ctrl-C stops the wait sooner
GRACEFUL_SECONDS = 30              # on SIGTERM, how long checks under way may take to finish
RESULT_KEYS = ("profile", "preview_columns", "preview", "verdict", "receipt", "problems")


def state_path(paths: Paths) -> Path:
    return paths.work / "serve.json"


def _lock_path(paths: Paths) -> Path:
    return paths.work / "serve.lock"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def configured_max_bytes(variable: str = MAX_BYTES_ENV, default: int = DEFAULT_MAX_BYTES) -> int:
    text = os.environ.get(variable, "").strip().replace("_", "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(f"{variable} must be a positive whole number of bytes, not {text!r}")
    return value


# --------------------------------------------------------------------------- the service


class Refused(Exception):
    """A request the service does not take: its HTTP status and why (answered as {"error": why})."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def safe_name(raw: str) -> str:
    """The file name a request gives, if it is one name and nothing else; else Refused (400)."""
    if "/" in raw or "\\" in raw:
        # Not stripped to its last part: a client sending a path is broken or hostile,
        # and the receipt would name a file the sender never named.
        raise Refused(400, f"name: {raw!r} is a path; send the file's name alone")
    if raw in ("", ".", ".."):
        raise Refused(400, "name: the file's name is missing" if not raw else f"name: {raw!r} is not a file's name")
    if raw.startswith("."):
        raise Refused(400, f"name: {raw!r} is a hidden file's name (it starts with a dot)")
    if any(unicodedata.category(ch).startswith("C") for ch in raw):
        raise Refused(400, f"name: {raw!r} holds control or format characters")
    if len(raw.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
        raise Refused(400, f"name: longer than {MAX_NAME_BYTES} bytes")
    return raw


def _country(raw: str) -> str:
    if len(raw) != 3 or not (raw.isascii() and raw.isalpha()):
        raise Refused(400, f"country: {raw!r} is not an ISO 3166 alpha-3 code (three letters)")
    return raw.upper()


def _say(line: str) -> None:
    print(line, flush=True)


def check_token() -> str:
    """The token a service's /check asks for: HMO_SERVE_TOKEN (for clients on other machines), else a new
    one, which serve.json gives to `hmo check` on this machine."""
    return os.environ.get(TOKEN_ENV, "").strip() or secrets.token_urlsafe(32)


def create_app(paths: Paths, *, token: str, max_bytes: int | None = None, say: Callable[[str], None] = _say,
               exclusive: "threading.Lock | None" = None, runs: Any = None) -> Any:
    """The service's FastAPI app for the data directory `paths` (checks read its aliases and template).

    `token`: what /check asks for as `Authorization: Bearer <token>`. The portal signs its users in
    itself; /check is for `hmo check`, which reads the token from serve.json, so a process that cannot
    read the data directory cannot have files checked against its aliases.

    `exclusive`: the lock that checks share with the inbox watcher's runs (flows/watcher.py says why);
    `runs`: the inbox watcher, which the portal asks for a look after an upload (None: nobody runs the
    pipeline here, and files wait for `hmo run`)."""
    import duckdb
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    from flows import check as checking

    limit = configured_max_bytes() if max_bytes is None else max_bytes
    started_at = _now()
    one_at_a_time = exclusive or threading.Lock()  # why: the module's docstring
    counts = {"checks": 0}

    app = FastAPI(title="Human Mobility Observatory", docs_url=None, redoc_url=None)
    app.state.paths = paths

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # 422 is kept for the check's own answer; a malformed request is a 400.
        problems = [f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "; ".join(problems) or "a malformed request"}, status_code=400)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the traceback on the service's stderr after this answer.
        return JSONResponse({"error": f"the service failed ({type(exc).__name__}); see its log"}, status_code=500)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "service": SERVICE, "pid": os.getpid(), "data_dir": str(paths.root),
                "started_at": started_at, "max_bytes": limit, "checks": counts["checks"],
                "inbox_runs": getattr(runs, "runs", None)}

    def check_one(file: Path, country: str, rows: int) -> "checking.CheckResult":
        with one_at_a_time:
            counts["checks"] += 1
            return checking.check(paths, file, country, preview_rows=rows)

    expected = f"Bearer {token}".encode()

    @app.post("/check")
    async def post_check(request: Request, country: str, name: str, rows: int = 10) -> dict:
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            raise Refused(401, f"a check needs this service's token: `hmo check` sends the one in "
                               f"{state_path(paths).name}; from another machine, set {TOKEN_ENV}")
        country, name = _country(country), safe_name(name)
        if not 0 <= rows <= MAX_PREVIEW_ROWS:
            raise Refused(400, f"rows: between 0 and {MAX_PREVIEW_ROWS}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise Refused(413, _too_large(limit))
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="hmo-serve-") as folder:
            file = Path(folder) / name
            await _receive(request, file, limit)
            try:
                result = await run_in_threadpool(check_one, file, country, rows)
            except (HmoError, duckdb.Error) as exc:
                # As `hmo check` says it (a DuckDB error by its first line), naming the file
                # as sent, not where it was put.
                message = str(exc) if isinstance(exc, HmoError) else (str(exc).splitlines() or [""])[0]
                message = message.replace(str(file), name)
                say(f"{_now()} check {country}/{name}: refused ({message})")
                raise Refused(422, message) from None
        seconds = time.perf_counter() - started
        say(f"{_now()} check {country}/{name}: {result.verdict} ({seconds:.2f} s)")
        return {**result.as_json(), "seconds": round(seconds, 3)}

    from fastapi.responses import RedirectResponse

    from portal.app import create_portal

    # Plain HTTP on this machine (the tests, a statistician trying it on a laptop) keeps cookies without
    # the Secure flag only when asked: behind the HTTPS proxy of production they must carry it.
    insecure = os.environ.get("HMO_PORTAL_INSECURE_COOKIES", "").strip().lower() in ("1", "true", "yes")
    app.mount("/portal", create_portal(paths, runs=runs, check=check_one, secure_cookies=not insecure))

    @app.get("/")
    def to_portal() -> Any:
        return RedirectResponse("/portal/", status_code=303)

    return app


def _too_large(limit: int) -> str:
    return f"the file is larger than this service takes ({limit:,} bytes; {MAX_BYTES_ENV})"


async def _receive(request: Any, file: Path, limit: int) -> None:
    """The body into `file`, counted as it comes (a chunked body declares no length)."""
    from starlette.requests import ClientDisconnect

    size = 0
    with file.open("xb") as sink:
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Refused(413, _too_large(limit))
                sink.write(chunk)
        except ClientDisconnect:  # `hmo check` stopped mid-upload: nobody to answer, nothing to log
            raise Refused(400, "the client went away before the whole file arrived") from None


@contextlib.contextmanager
def _sole_service(paths: Paths) -> Iterator[None]:
    """One service per data directory (both would write serve.json). A flock: the kernel
    drops it however the holder ends, so a service killed with -9 blocks nobody."""
    try:
        paths.work.mkdir(parents=True, exist_ok=True)
        fd = os.open(_lock_path(paths), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise HmoError(f"hmo serve cannot write its files in {paths.work}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            state = read_state(paths)
            where = f" at {state['url']} (pid {state['pid']})" if state else ""
            raise HmoError(f"another hmo serve already serves {paths.root}{where}") from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _bound(host: str, port: int) -> Iterator[socket.socket]:
    """A socket bound at once (a port in use is said before the warm-up's seconds), listening
    only once uvicorn runs: until then a client is refused, not kept waiting."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise HmoError(f"cannot listen on {host}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise HmoError(f"cannot listen on {host} port {port}: {exc.strerror}") from None
        yield sock
    finally:
        sock.close()


def _url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    client = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{client}]:{port}" if ":" in client else f"http://{client}:{port}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _write_state(paths: Paths, url: str, token: str, prefect_api: str | None = None) -> None:
    record = json.dumps({"url": url, "pid": os.getpid(), "started_at": _now(), "prefect_api": prefect_api,
                         "token": token}) + "\n"
    partial = paths.work / f".serve.json.{os.getpid()}.partial"
    partial.unlink(missing_ok=True)
    # Readable by the service's own user alone: the token in it lets a process have files checked.
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
        handle.write(record)
    os.replace(partial, state_path(paths))  # a reader sees no file or a whole one


def _remove_state(paths: Paths) -> None:
    state = read_state(paths)
    if state is not None and state["pid"] == os.getpid():  # only our own
        with contextlib.suppress(FileNotFoundError):
            state_path(paths).unlink()
    with contextlib.suppress(FileNotFoundError):
        (paths.work / f".serve.json.{os.getpid()}.partial").unlink()


def serve(paths: Paths, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          say: Callable[[str], None] = _say, schedule: bool = True, watch: bool = True) -> None:
    """Warm up, start the monthly schedule and the inbox watcher, listen, write serve.json; until
    SIGTERM or Ctrl-C (which uvicorn turns into a graceful shutdown, then re-raises for `hmo`'s own
    one-line stop). On the way out: the watcher's run under way ends, the runner and its Prefect
    server stop.

    `schedule`: serve the monthly deployment (flows/schedule.py) from a Prefect server of the
    service's own (or the configured PREFECT_API_URL); `watch`: run the pipeline on files dropped
    into the inbox (flows/watcher.py)."""
    limit = configured_max_bytes()
    with _sole_service(paths), _bound(host, port) as sock, contextlib.ExitStack() as running:
        import uvicorn  # after the refusals, which take a moment, not the imports' second or two

        from flows.check import warm_up
        from flows.watcher import InboxWatcher

        url = _url(sock, host)
        if not _loopback(host):
            say(f"hmo serve: listening on {host}, reachable from other machines, in plain HTTP and without "
                "sign-in: put it behind a reverse proxy that terminates HTTPS before anyone uses it")
        say(f"hmo serve: preparing checks for {paths.root} (Great Expectations, the check template)")
        prefect_url = None
        if schedule:
            from flows.schedule import serving
            from flows.server import prefect_api

            # The server boots on the other core while this one warms the checks up.
            def warm() -> None:
                warm_up(paths)

            api = running.enter_context(prefect_api(paths.work / "prefect-server-serve.log", meanwhile=warm,
                                                    resident=True))
            if api.url is None:
                say("hmo serve: no Prefect API configured, so the monthly report is not scheduled")
            else:
                running.enter_context(serving(paths, api.url, say))
                prefect_url = api.url
        else:
            warm_up(paths)
        exclusive = threading.Lock()
        watcher = InboxWatcher(paths, exclusive, say) if watch else None
        token = check_token()
        app = create_app(paths, token=token, max_bytes=limit, say=say, exclusive=exclusive, runs=watcher)
        if watcher is not None:
            watcher.start()
            running.callback(watcher.stop)
            say(f"hmo serve: watching {paths.inbox} (a file dropped there gets its receipt in {paths.outbox})")

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if self.started and not self.should_exit:
                    _write_state(paths, url, token, prefect_url)
                    say(f"hmo serve: listening at {url} (pid {os.getpid()}; {state_path(paths)}); "
                        "stop with Ctrl-C or SIGTERM")

        config = uvicorn.Config(app, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=GRACEFUL_SECONDS)
        try:
            Server(config).run(sockets=[sock])
        finally:
            _remove_state(paths)


# --------------------------------------------------------------------------- `hmo check`'s side


class NotServed(Exception):
    """Why a check is not handed to a service that should take it: `hmo check` says so and checks locally."""


@dataclass(frozen=True)
class Service:
    url: str
    data_dir: str
    max_bytes: int | None
    token: str | None = None


def read_state(paths: Paths) -> dict | None:
    """serve.json as written by a service, or None (absent, being replaced, or not one)."""
    try:
        record = json.loads(state_path(paths).read_text(encoding="utf-8"))
        pid = int(record["pid"])
        state = {"url": str(record["url"]), "pid": pid, "started_at": str(record.get("started_at")),
                 "prefect_api": record.get("prefect_api") or None, "token": record.get("token") or None}
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return state if pid > 0 else None


def _opener(url: str) -> urllib.request.OpenerDirector:
    # A proxy from the environment (http_proxy) is for the outside world, not for this machine.
    host = urllib.parse.urlsplit(url).hostname or ""
    return urllib.request.build_opener(urllib.request.ProxyHandler({})) if _loopback(host) \
        else urllib.request.build_opener()


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    return getattr(reason, "strerror", None) or str(reason) or type(exc).__name__


def _probe(url: str, who: str, token: str | None) -> Service:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise NotServed(f"{who}: not an http:// or https:// URL")
    try:
        with _opener(url).open(f"{url}/health", timeout=PROBE_SECONDS) as answer:
            health = json.loads(answer.read())
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise NotServed(f"{who} does not answer ({_reason(exc)})") from None
    if not isinstance(health, dict) or health.get("status") != "ok" or health.get("service") != SERVICE:
        raise NotServed(f"{who} is not an hmo serve that is up")
    limit = health.get("max_bytes")
    return Service(url, str(health.get("data_dir")), limit if isinstance(limit, int) else None, token)


def find(paths: Paths) -> Service | None:
    """The service to hand a check to: `HMO_SERVE_URL`, else the one serve.json names.

    None when there is none (no serve.json, or its process is gone: a service
    that died leaves it behind). NotServed when one should be there and does
    not answer.
    """
    url = os.environ.get(URL_ENV, "").strip().rstrip("/")
    if url:
        return _probe(url, f"hmo serve at {url} ({URL_ENV})", os.environ.get(TOKEN_ENV, "").strip() or None)
    state = read_state(paths)
    if state is None or not process_alive(state["pid"]):
        return None
    where = f"hmo serve at {state['url']} (pid {state['pid']}, in {state_path(paths)})"
    service = _probe(state["url"].rstrip("/"), where, os.environ.get(TOKEN_ENV, "").strip() or state["token"])
    if service.data_dir != str(paths.root):
        raise NotServed(f"{where} now serves another data directory ({service.data_dir})")
    return service


def remote_check(service: Service, file: Path, country: str, rows: int) -> dict:
    """The service's CheckResult for `file`, as JSON (`CheckResult.as_json`).

    HmoError when the check refuses the file (as `hmo check` would locally,
    naming the file as given); NotServed when the service does not check it.
    """
    name = file.name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise NotServed(f"{file}: its name is not UTF-8 text, which the service would not name as it is") from None
    size = file.stat().st_size
    if service.max_bytes is not None and size > service.max_bytes:
        raise NotServed(f"{file} is larger ({size:,} bytes) than hmo serve at {service.url} takes "
                        f"({service.max_bytes:,})")
    query = urllib.parse.urlencode({"country": country, "name": name, "rows": rows})
    try:
        body = file.open("rb")
    except OSError as exc:
        raise NotServed(f"{file} cannot be read here ({exc.strerror})") from None
    with body:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if service.token:
            headers["Authorization"] = f"Bearer {service.token}"
        request = urllib.request.Request(f"{service.url}/check?{query}", data=body, method="POST", headers=headers)
        try:
            with _opener(service.url).open(request, timeout=CHECK_SECONDS) as answer:
                result = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            message = _error_of(exc)
            if exc.code == 422:
                raise HmoError(f"{file}{message[len(name):]}" if message.startswith(f"{name}:") else message) \
                    from None
            raise NotServed(f"hmo serve at {service.url} answered {exc.code} ({message})") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise NotServed(f"hmo serve at {service.url} did not answer the check ({_reason(exc)})") from None
    if not isinstance(result, dict) or any(key not in result for key in RESULT_KEYS):
        raise NotServed(f"hmo serve at {service.url} answered something that is not a check's result")
    return result


def _error_of(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (OSError, ValueError, TypeError, KeyError, http.client.HTTPException):
        return exc.reason if isinstance(exc.reason, str) else f"HTTP {exc.code}"
