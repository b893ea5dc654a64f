"""The portal's pages: FastAPI with Jinja2 templates, plain HTML forms that work without JavaScript.

FastAPI because `hmo serve` already is a FastAPI app (it comes with Prefect),
and its routes, dependencies and TestClient are what the tests drive; Jinja2
autoescapes everything a country sent. The one script (`static/upload.js`)
only adds a progress bar to the upload form; without it the form posts as is.

Every page and download under `/c/<ISO3>/` is checked against the signed-in
user's country on the server (`_country_session`): a country's user asking
for another's gets the same 404 as for something that does not exist. Every
form carries the session's CSRF token and every POST checks it; the sign-in
form, which has no session yet, checks a token it set in its own cookie.

No `from __future__ import annotations`: FastAPI reads the endpoints'
annotations, which name classes imported inside `create_portal`.
"""
import csv
import io
import json
import secrets
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, Callable, Protocol

from expectations.receipts import column_text, country_receipts
from expectations.suites import data_docs_index
from hmo.settings import ISO3_MEMBERS, Paths
from hmo.spreadsheets import defused
from portal import audit
from portal.calendar import country_calendar, overview, recent_months
from portal.accounts import LANGUAGES, Accounts, Session, SignInRefused, csrf_matches
from portal.texts import status_text, t
from portal.uploads import UploadRefused, configured_max_bytes, receive

SESSION_COOKIE = "hmo_session"
SIGN_IN_COOKIE = "hmo_sign_in"
SORTABLE = ("severity", "row", "column", "rule", "value")
CSV_COLUMNS = ("rule", "severity", "row", "column", "value", "message_es", "message_en", "detail_es", "detail_en",
               "suggestions")
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
Check = Callable[[Path, str, int], Any]


class NotSignedIn(Exception):
    """No live session: the page sends the browser to the sign-in form."""


class Forbidden(Exception):
    """A POST without this session's CSRF token (or the sign-in form's): refused before it does anything."""


class NotFound(Exception):
    """Nothing here for this user: absent, or another country's (the two look alike on purpose)."""


def _megabytes(limit: int) -> str:
    return f"{limit / 1024 / 1024:,.0f} MB"


def _sort_problems(problems: list[dict], key: str, descending: bool) -> list[dict]:
    if key not in SORTABLE:
        return problems

    def value(problem: dict) -> tuple:
        item = problem.get(key)
        return (item is None, item if isinstance(item, int) else str(item or ""))

    return sorted(problems, key=value, reverse=descending)


def _month_names(language: str) -> list[str]:
    from babel.dates import get_month_names

    names = get_month_names("abbreviated", locale=language)
    return [names[m].rstrip(".") for m in range(1, 13)]


def problems_csv(receipt: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for problem in receipt.get("problems") or []:
        row = {**problem, "column": column_text(problem),
               "suggestions": "; ".join(f"{s.get('code')}" for s in problem.get("suggestions") or [])}
        writer.writerow([defused("" if row.get(c) is None else row.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


class Runs(Protocol):
    """Who runs the pipeline on uploaded files: `hmo serve`'s inbox watcher (flows/watcher.py)."""

    running: bool  # a run is under way: a waiting file is being validated

    def request(self) -> None: ...  # an upload landed: look at the inbox now


class _NoRuns:
    """No watcher (`hmo serve --no-watch`, the tests of the portal alone): files wait for `hmo run`."""

    running = False

    def request(self) -> None:
        pass


def create_portal(paths: Paths, runs: Runs | None = None, check: Check | None = None,
                  secure_cookies: bool = True, max_bytes: int | None = None) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
    from fastapi.templating import Jinja2Templates
    from starlette.concurrency import run_in_threadpool

    accounts = Accounts(paths)
    runs = runs if runs is not None else _NoRuns()
    limit = configured_max_bytes() if max_bytes is None else max_bytes
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.globals.update(t=t, status_text=status_text, column_text=column_text, members=ISO3_MEMBERS)

    app = FastAPI(title="HMO portal", docs_url=None, redoc_url=None, openapi_url=None)

    def client(request: Request) -> str | None:
        return request.client.host if request.client else None

    def language(request: Request, session: Session | None) -> str:
        if session is not None:
            return session.user.language
        asked = request.query_params.get("lang")
        return asked if asked in LANGUAGES else "es"

    def page(request: Request, template: str, session: Session | None, status: int = 200, **context: Any) -> Any:
        lang = language(request, session)
        response = templates.TemplateResponse(request, template, {
            "lang": lang, "session": session, "user": session.user if session else None,
            "csrf": session.csrf_token if session else None, "root": request.scope.get("root_path", ""),
            **context}, status_code=status)
        return _guarded(response)

    def _guarded(response: Any) -> Any:
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
        return response

    def current(request: Request) -> Session | None:
        return accounts.session(request.cookies.get(SESSION_COOKIE))

    def signed_in(request: Request) -> Session:
        session = current(request)
        if session is None:
            raise NotSignedIn()
        return session

    def country_session(request: Request, country: str) -> Session:
        session = signed_in(request)
        if country not in ISO3_MEMBERS or not session.user.may_see(country):
            raise NotFound()
        return session

    async def form_with_csrf(request: Request, session: Session) -> dict[str, str]:
        form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not csrf_matches(session, fields.get("csrf")):
            raise Forbidden()
        return fields

    def url(request: Request, path: str) -> str:
        return f"{request.scope.get('root_path', '')}{path}"

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Any:
        if request.method == "GET":
            return RedirectResponse(url(request, "/signin?ended=1" if SESSION_COOKIE in request.cookies else "/signin"),
                                    status_code=303)
        return _guarded(HTMLResponse(t("session_ended", language(request, None)), status_code=401))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Any:
        session = current(request)
        return page(request, "message.html", session, status=404, message=t("not_found", language(request, session)))

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Any:
        session = current(request)
        return page(request, "message.html", session, status=403,
                    message=t("forbidden_form", language(request, session)))

    # ----------------------------------------------------------------- signing in and out

    @app.get("/signin")
    def sign_in_form(request: Request, ended: int = 0, failed: int = 0) -> Any:
        token = secrets.token_urlsafe(32)
        response = page(request, "signin.html", None, sign_in_csrf=token, ended=ended, failed=failed)
        response.set_cookie(SIGN_IN_COOKIE, token, httponly=True, secure=secure_cookies, samesite="strict",
                            path=url(request, "/") or "/", max_age=3600)
        return response

    @app.post("/signin")
    async def sign_in(request: Request) -> Any:
        form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        expected = request.cookies.get(SIGN_IN_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, fields.get("csrf", "")):
            raise Forbidden()
        email = fields.get("email", "")
        try:
            token, session = await run_in_threadpool(accounts.sign_in, email, fields.get("password", ""))
        except SignInRefused as refused:
            audit.record(paths, "sign_in_refused", email.strip().lower(), None, client(request), reason=refused.reason)
            return RedirectResponse(url(request, "/signin?failed=1"), status_code=303)
        audit.record(paths, "sign_in", session.user.email, session.user.scope, client(request))
        target = "/" if session.user.is_staff else f"/c/{session.user.scope}/"
        response = RedirectResponse(url(request, target), status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, secure=secure_cookies, samesite="lax",
                            path=url(request, "/") or "/")
        response.delete_cookie(SIGN_IN_COOKIE, path=url(request, "/") or "/")
        return response

    @app.post("/signout")
    async def sign_out(request: Request) -> Any:
        session = signed_in(request)
        await form_with_csrf(request, session)
        accounts.sign_out(request.cookies.get(SESSION_COOKIE, ""))
        audit.record(paths, "sign_out", session.user.email, session.user.scope, client(request))
        response = RedirectResponse(url(request, "/signin"), status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=url(request, "/") or "/")
        return response

    @app.post("/language")
    async def switch_language(request: Request) -> Any:
        session = signed_in(request)
        fields = await form_with_csrf(request, session)
        accounts.set_language(session.user.email, fields.get("language", ""))
        back = fields.get("back", "/")
        # Only a path of this portal: never an address elsewhere (an open redirect).
        if not back.startswith("/") or back.startswith("//"):
            back = "/"
        return RedirectResponse(url(request, back), status_code=303)

    # ----------------------------------------------------------------- pages

    @app.get("/")
    def home(request: Request) -> Any:
        session = signed_in(request)
        if not session.user.is_staff:
            return RedirectResponse(url(request, f"/c/{session.user.scope}/"), status_code=303)
        today = date.today()
        reports = {folder.name: sorted(file.name for file in folder.glob("report.*.*"))
                   for folder in paths.reports.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]") if folder.is_dir()}
        return page(request, "staff.html", session, lines=overview(paths, list(ISO3_MEMBERS), today),
                    columns=recent_months(today),
                    reports=sorted(reports.items(), reverse=True))

    def submissions_of(country: str) -> list[dict]:
        """Answered receipts, then files still waiting: in the inbox (received) or being validated."""
        listed = [{"status": r["status"], "file_name": r["file_name"], "received_at": r.get("received_at"),
                   "rows": r.get("data_rows"), "problems": len(r.get("problems") or []),
                   "receipt_id": r["receipt_id"], "submission_id": r.get("submission_id")}
                  for r in country_receipts(paths, country)]
        inbox = paths.inbox / country
        waiting = sorted(p.name for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")) \
            if inbox.is_dir() else []
        state = "validating" if runs.running else "received"
        return [{"status": state, "file_name": name, "received_at": None, "rows": None, "problems": None,
                 "receipt_id": None} for name in waiting] + listed

    @app.get("/c/{country}/")
    def country_page(request: Request, country: str, uploaded: int = 0) -> Any:
        session = country_session(request, country)
        return page(request, "country.html", session, country=country, submissions=submissions_of(country),
                    limit=_megabytes(limit), uploaded=uploaded, refused="",
                    may_send=session.user.scope == country, may_check=check is not None,
                    calendar=country_calendar(paths, country), months=_month_names(session.user.language))

    def receipt_of(country: str, receipt_id: str) -> dict:
        found = country_receipts(paths, country, receipt_id=receipt_id)
        if not found:
            raise NotFound()
        return found[0]

    @app.get("/c/{country}/receipts/{receipt_id}")
    def receipt_page(request: Request, country: str, receipt_id: str, sort: str = "severity",
                     desc: int = 0) -> Any:
        session = country_session(request, country)
        receipt = receipt_of(country, receipt_id)
        problems = _sort_problems(list(receipt.get("problems") or []), sort, bool(desc))
        docs = data_docs_index(paths, country)
        return page(request, "receipt.html", session, country=country, receipt=receipt, problems=problems,
                    sort=sort, desc=desc, sortable=SORTABLE, has_docs=docs.exists())

    def download(request: Request, country: str, receipt_id: str, kind: str) -> Any:
        """The receipt's JSON or its problems as CSV, as an attachment; every download is in the audit log."""
        session = country_session(request, country)
        receipt = receipt_of(country, receipt_id)
        audit.record(paths, "download", session.user.email, country, client(request), receipt=receipt_id,
                     format=kind)
        if kind == "json":
            body = json.dumps({k: v for k, v in receipt.items() if k not in ("receipt_id", "stem")},
                              ensure_ascii=False, indent=2)
            media, name = "application/json", f"{receipt_id}.json"
        else:
            # A byte-order mark: Excel, which most statistics offices open a CSV with, then reads UTF-8.
            body, media, name = "\ufeff" + problems_csv(receipt), "text/csv; charset=utf-8", f"{receipt_id}-problems.csv"
        return _guarded(Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}))

    @app.get("/c/{country}/receipts/{receipt_id}/receipt.json")
    def receipt_json(request: Request, country: str, receipt_id: str) -> Any:
        return download(request, country, receipt_id, "json")

    @app.get("/c/{country}/receipts/{receipt_id}/problems.csv")
    def receipt_csv(request: Request, country: str, receipt_id: str) -> Any:
        return download(request, country, receipt_id, "csv")

    def file_under(folder: Path, path: str) -> Any:
        """A file of `folder` named by a URL path, never one outside it."""
        root = folder.resolve()
        target = (root / (path or "index.html")).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise NotFound()
        response = FileResponse(target)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    def staff_session(request: Request) -> Session:
        session = signed_in(request)
        if not session.user.is_staff:
            raise NotFound()  # as for another country's pages: nothing says what is there
        return session

    @app.get("/c/{country}/docs/{path:path}")
    def data_docs(request: Request, country: str, path: str) -> Any:
        country_session(request, country)
        return file_under(data_docs_index(paths, country).parent, path)

    # The monthly reports and the staff's Data Docs, at the same places relative to each other as in the
    # data directory, so that a report's link to the Data Docs opens here too.
    @app.get("/reports/{path:path}")
    def reports(request: Request, path: str) -> Any:
        staff_session(request)
        return file_under(paths.reports, path)

    @app.get("/data_docs/sites/staff/{path:path}")
    def staff_data_docs(request: Request, path: str) -> Any:
        staff_session(request)
        return file_under(data_docs_index(paths, None).parent, path)

    # ----------------------------------------------------------------- sending files

    @app.post("/c/{country}/upload")
    async def upload(request: Request, country: str) -> Any:
        session = country_session(request, country)
        lang = session.user.language
        if session.user.scope != country:
            return page(request, "message.html", session, status=403, message=t("staff_cannot_send", lang))
        try:
            stored = await receive(request, paths, paths.inbox / country, limit,
                                   lambda sent: csrf_matches(session, sent))
        except UploadRefused as refused:
            if refused.key == "forbidden_form":
                raise Forbidden() from None
            audit.record(paths, "upload_refused", session.user.email, country, client(request), reason=refused.key)
            reason = t(refused.key, lang, limit=_megabytes(limit), **refused.values)
            return page(request, "country.html", session, status=refused.status, country=country,
                        submissions=submissions_of(country), limit=_megabytes(limit), uploaded=0,
                        refused=reason, may_send=True, may_check=check is not None,
                        calendar=country_calendar(paths, country), months=_month_names(lang))
        for item in stored:
            audit.record(paths, "upload", session.user.email, country, client(request), file=item.name,
                         sent_as=item.sent_as, sha256=item.sha256, bytes=item.size)
        runs.request()
        if "application/json" in request.headers.get("accept", ""):
            return _guarded(Response(json.dumps({"received": [item.name for item in stored]}),
                                     media_type="application/json"))
        # A count, not the names: a link someone else made must not put words on the page.
        return RedirectResponse(url(request, f"/c/{country}/?uploaded={len(stored)}"), status_code=303)

    @app.post("/c/{country}/check")
    async def dry_run(request: Request, country: str) -> Any:
        session = country_session(request, country)
        lang = session.user.language
        if check is None or session.user.scope != country:
            raise NotFound()
        with tempfile.TemporaryDirectory(prefix="hmo-portal-check-", dir=paths.work) as folder:
            try:
                stored = await receive(request, paths, Path(folder), limit, lambda sent: csrf_matches(session, sent))
            except UploadRefused as refused:
                if refused.key == "forbidden_form":
                    raise Forbidden() from None
                return page(request, "message.html", session, status=refused.status,
                            message=t("upload_refused", lang,
                                      reason=t(refused.key, lang, limit=_megabytes(limit), **refused.values)))
            item = stored[0]
            try:
                result = await run_in_threadpool(check, Path(folder) / item.name, country, 10)
            except Exception as exc:  # the check's refusal is the answer to show, in one line
                reason = (str(exc).splitlines() or [type(exc).__name__])[0].replace(folder + "/", "")
                return page(request, "message.html", session, status=422,
                            message=t("check_unavailable", lang, reason=reason))
        audit.record(paths, "check", session.user.email, country, client(request), file=item.name,
                     verdict=result.verdict)
        return page(request, "check.html", session, country=country, name=item.sent_as, result=result)

    @app.get("/static/{name}")
    def static(name: str) -> Any:
        target = STATIC / name
        if "/" in name or not target.is_file():
            raise NotFound()
        return FileResponse(target)

    return app
