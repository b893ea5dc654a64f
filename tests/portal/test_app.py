"""The country portal through HTTP (FastAPI's TestClient on the app `hmo serve` mounts at /portal).

What a statistician does (sign in, send files, read the answers) and what
nobody can do (see or send for another country, post without the session's
token, guess passwords, fill the disk).
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import io
import json
import re
import socket
import threading
import time
from datetime import date
from typing import Callable

import pytest
from fastapi.testclient import TestClient

from conftest import SAMPLES, drop_sample
from flows import stages
from portal import audit
from portal.accounts import MAX_FAILED_SIGN_INS, Accounts
from portal.app import create_portal
from portal.calendar import country_calendar, recent_months
from hmo.settings import ISO3_MEMBERS
from test_calendar import publish_status

PASSWORD = "correct horse battery"
GTM_USER, PAN_USER, PPT_USER = "ana@ine.gob.gt", "luis@inec.gob.pa", "ppt@cancilleria.example"
MB = 1024 * 1024


@pytest.fixture
def portal(paths):
    accounts = Accounts(paths)
    accounts.add("GTM", GTM_USER, PASSWORD)
    accounts.add("PAN", PAN_USER, PASSWORD, language="en")
    accounts.add("PPT", PPT_USER, PASSWORD)
    return create_portal(paths, max_bytes=5 * MB)


def browser(app) -> TestClient:
    return TestClient(app, base_url="https://testserver")


def token_in(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(app, email: str) -> tuple[TestClient, str]:
    client = browser(app)
    form = client.get("/signin")
    answer = client.post("/signin", data={"csrf": token_in(form.text), "email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return client, token_in(answer.text)


def send(client: TestClient, country: str, csrf: str, *files: tuple[str, bytes]):
    return client.post(f"/c/{country}/upload", data={"csrf": csrf},
                       files=[("files", (name, body, "text/csv")) for name, body in files])


def sample(country: str) -> tuple[str, bytes]:
    path = next((SAMPLES / country).iterdir())
    return path.name, path.read_bytes()


def statuses(html: str) -> list[str]:
    return re.findall(r'<td class="status">([^<]+)</td>', html)


def test_a_statistician_sends_files_and_reads_each_answer(paths, portal):
    client, csrf = sign_in(portal, GTM_USER)
    good_name, good = sample("PAN")  # a clean file, sent by Guatemala under its own name
    bad_name, bad = sample("GTM")    # the sample with errors
    good = good.replace(b"PAN", b"GTM")
    answer = send(client, "GTM", csrf, ("bueno.csv", good), (bad_name, bad))
    assert answer.status_code == 200 and answer.url.path == "/c/GTM/"
    assert "Archivos recibidos: 2." in answer.text
    assert sorted(p.name for p in (paths.inbox / "GTM").iterdir()) == sorted(["bueno.csv", bad_name])
    assert statuses(answer.text) == ["recibido", "recibido"]
    assert not list((paths.work / "uploads").iterdir())

    stages.run(paths)  # what hmo serve's inbox watcher runs after an upload
    page = client.get("/c/GTM/")
    assert sorted(statuses(page.text)) == ["aceptado", "rechazado"], page.text
    # The calendar: the sample's months, sent years after they were due, are accepted late; others missing.
    accepted_months = {m for p in paths.outbox.glob("GTM/*.accepted.json") for m in json.loads(p.read_text())["periods"]}
    late = set(re.findall(r'class="cal-late" title="(\d{4}-\d{2}):', page.text))
    assert late == {m[:7] for m in accepted_months} and late
    assert 'class="cal-missing"' in page.text
    calendar = country_calendar(paths, "GTM", today=date(2026, 12, 2))
    assert (calendar.next_period, calendar.next_due) == (date(2026, 11, 1), date(2026, 12, 15))
    calendar = country_calendar(paths, "GTM", today=date(2026, 12, 16))
    assert (calendar.next_period, calendar.next_due) == (date(2026, 12, 1), date(2027, 1, 15))
    rejected = re.search(r'href="(/c/GTM/receipts/(\d+))"[^>]*>[^<]*</a></td>\s*</tr>', page.text)
    receipt_ids = re.findall(r'/c/GTM/receipts/(\d+)"', page.text)
    assert len(receipt_ids) == 2 and rejected
    pages = {rid: client.get(f"/c/GTM/receipts/{rid}") for rid in receipt_ids}
    bad_id = next(rid for rid, p in pages.items() if "rechazado" in p.text.split('id="verdict"', 1)[1][:200])
    receipt = client.get(f"/c/GTM/receipts/{bad_id}/receipt.json").json()
    assert receipt["status"] == "rejected" and receipt["problems"]
    rows = list(csv.DictReader(io.StringIO(client.get(f"/c/GTM/receipts/{bad_id}/problems.csv").text.lstrip("\ufeff"))))
    assert [(r["rule"], r["row"], r["value"]) for r in rows] == [
        (p["rule"], "" if p["row"] is None else str(p["row"]), "" if p["value"] is None else p["value"])
        for p in receipt["problems"]]
    # Every problem is on the page, and the page sorts by row when asked.
    by_row = client.get(f"/c/GTM/receipts/{bad_id}?sort=row").text
    assert by_row.count("<tr class=\"error\"") + by_row.count("<tr class=\"warning\"") == len(receipt["problems"])
    shown_rows = [int(r) for r in re.findall(r'<tr class="(?:error|warning)">\s*<td>\w+</td>\s*<td>\w+</td>\s*<td>(\d+)</td>',
                                             by_row)]
    assert shown_rows == sorted(shown_rows) and shown_rows
    # The country's own Data Docs open from the receipt.
    assert client.get("/c/GTM/docs/index.html").status_code == 200
    events = [e["event"] for e in audit.read_all(paths)]
    assert events.count("upload") == 2 and events.count("download") == 2 and events[0] == "sign_in"


def test_a_country_never_sees_or_sends_for_another(paths, portal):
    drop_sample(paths, "PAN")
    stages.run(paths)
    pan_receipt = re.search(r"\.(\d+)\.accepted\.txt$", next((paths.outbox / "PAN").glob("*.txt")).name).group(1)
    pan_file, pan_bytes = sample("PAN")
    pan_sha256 = hashlib.sha256(pan_bytes).hexdigest()
    assert browser(portal).get(f"/c/PAN/receipts/{pan_receipt}", follow_redirects=False).status_code == 303
    pan, _ = sign_in(portal, PAN_USER)
    assert pan.get(f"/c/PAN/receipts/{pan_receipt}").status_code == 200

    gtm, csrf = sign_in(portal, GTM_USER)
    for url in ("/c/PAN/", f"/c/PAN/receipts/{pan_receipt}", f"/c/PAN/receipts/{pan_receipt}/receipt.json",
                f"/c/PAN/receipts/{pan_receipt}/problems.csv", "/c/PAN/docs/index.html",
                f"/c/GTM/receipts/{pan_receipt}", "/c/GTM/docs/../../PAN/index.html", "/c/GTM/docs/%2e%2e/PAN/index.html"):
        answer = gtm.get(url)
        assert answer.status_code == 404, url
        assert pan_file not in answer.text and pan_sha256 not in answer.text, url
    # A forged form: Panama's upload address, or a file name that is a path into Panama's inbox.
    assert send(gtm, "PAN", csrf, ("x.csv", b"a,b\n")).status_code == 404
    answer = send(gtm, "GTM", csrf, ("../PAN/x.csv", b"a,b\n"))
    assert answer.status_code == 400
    assert not (paths.inbox / "PAN").exists() or not list((paths.inbox / "PAN").iterdir())
    assert not (paths.inbox / "GTM").exists() or not list((paths.inbox / "GTM").iterdir())
    # The PPT sees every country, and sends for none.
    ppt, ppt_csrf = sign_in(portal, PPT_USER)
    assert ppt.get(f"/c/PAN/receipts/{pan_receipt}").status_code == 200
    assert send(ppt, "PAN", ppt_csrf, ("x.csv", b"a,b\n")).status_code == 403


def test_a_post_without_the_sessions_token_or_without_a_session_is_refused(paths, portal):
    gtm, csrf = sign_in(portal, GTM_USER)
    _, other_csrf = sign_in(portal, PAN_USER)
    assert send(gtm, "GTM", "", ("a.csv", b"a\n")).status_code == 403
    assert send(gtm, "GTM", other_csrf, ("a.csv", b"a\n")).status_code == 403
    # The token must come first: files before it are not read.
    answer = gtm.post("/c/GTM/upload", files=[("files", ("a.csv", b"a\n", "text/csv")), ("csrf", (None, csrf))])
    assert answer.status_code == 403
    assert gtm.post("/signout", data={"csrf": other_csrf}).status_code == 403
    assert gtm.get("/c/GTM/").status_code == 200  # still signed in
    stranger = browser(portal)
    assert send(stranger, "GTM", csrf, ("a.csv", b"a\n")).status_code == 401
    assert stranger.post("/signin", data={"csrf": "made-up", "email": GTM_USER, "password": PASSWORD}).status_code == 403
    assert not (paths.inbox / "GTM").exists() or not list((paths.inbox / "GTM").iterdir())
    assert gtm.post("/signout", data={"csrf": csrf}).url.path == "/signin"
    assert gtm.get("/c/GTM/", follow_redirects=False).headers["location"].startswith("/signin")


def test_twenty_wrong_passwords_lock_the_account(paths, portal):
    client = browser(portal)
    for attempt in range(MAX_FAILED_SIGN_INS):
        token = token_in(client.get("/signin").text)
        answer = client.post("/signin", data={"csrf": token, "email": GTM_USER, "password": f"guess {attempt}"})
        assert answer.url.path == "/signin" and "failed=1" in str(answer.url)
    token = token_in(client.get("/signin").text)
    answer = client.post("/signin", data={"csrf": token, "email": GTM_USER, "password": PASSWORD})
    assert answer.url.path == "/signin", "the right password must not open a locked account"
    reasons = [e["reason"] for e in audit.read_all(paths) if e["event"] == "sign_in_refused"]
    assert reasons[-2:] == ["wrong password; account locked", "account locked after too many wrong passwords"]
    assert all(PASSWORD not in line for line in audit.audit_path(paths).read_text().splitlines())


def _big_body(csrf: str, boundary: str, total: int, before_each: Callable[[], None] = lambda: None):
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
           f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.csv\"\r\n"
           "Content-Type: text/csv\r\n\r\n").encode()
    chunk = b"GTM,2024-01,ENTRY,,,,,,1,\n" * 40_000  # ~1 MB
    for _ in range(total // len(chunk)):
        before_each()
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def test_an_upload_larger_than_the_limit_is_refused_and_nothing_kept(paths, portal):
    client, csrf = sign_in(portal, GTM_USER)
    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    # Chunked (no length said): counted as it comes, refused at the limit (5 MB here).
    answer = client.post("/c/GTM/upload", content=_big_body(csrf, "b0undary", 8 * MB), headers=headers)
    assert answer.status_code == 413 and "5 MB" in answer.text
    assert not list((paths.work / "uploads").iterdir())
    assert not (paths.inbox / "GTM").exists() or not list((paths.inbox / "GTM").iterdir())
    # A declared length over the limit is refused before a byte is read.
    answer = client.post("/c/GTM/upload", content=b"x" * 10, headers={**headers, "Content-Length": str(200 * MB)})
    assert answer.status_code == 413


@pytest.fixture
def live(paths):
    """The portal served by a real uvicorn (which streams a body; the TestClient reads it all first)."""
    import uvicorn

    accounts = Accounts(paths)
    accounts.add("GTM", GTM_USER, PASSWORD)
    app = create_portal(paths, max_bytes=60 * MB)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    client, csrf = sign_in(app, GTM_USER)  # the session lives in the accounts file both share
    try:
        yield port, client.cookies.get("hmo_session"), csrf
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _stream(port: int, cookie: str, body) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", "/c/GTM/upload", body=body, encode_chunked=True,
                           headers={"Content-Type": "multipart/form-data; boundary=b0undary",
                                    "Cookie": f"hmo_session={cookie}", "Accept": "application/json"})
        return connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        return None  # the server answered and closed while the client was still sending
    finally:
        connection.close()


def test_a_200_mb_upload_stops_at_the_limit_on_disk_and_leaves_nothing(paths, live):
    port, cookie, csrf = live
    staged: list[int] = []

    def measure() -> None:
        sizes = []
        for part in (paths.work / "uploads").glob("*"):
            with contextlib.suppress(FileNotFoundError):  # the server may remove it between listing and stat
                sizes.append(part.stat().st_size)
        staged.append(sum(sizes))

    status = _stream(port, cookie, _big_body(csrf, "b0undary", 200 * MB, measure))
    assert status in (413, None)
    assert max(staged) <= 61 * MB, f"{max(staged):,} bytes were written for a 60 MB limit"
    assert not list((paths.work / "uploads").iterdir())
    assert not (paths.inbox / "GTM").exists() or not list((paths.inbox / "GTM").iterdir())


def test_a_50_mb_file_arrives_whole(paths, live):
    port, cookie, csrf = live
    digest = hashlib.sha256()

    def count() -> None:
        digest.update(b"GTM,2024-01,ENTRY,,,,,,1,\n" * 40_000)

    status = _stream(port, cookie, _big_body(csrf, "b0undary", 50 * MB, count))
    assert status == 200
    (arrived,) = (paths.inbox / "GTM").iterdir()
    assert arrived.name == "big.csv" and hashlib.sha256(arrived.read_bytes()).hexdigest() == digest.hexdigest()
    assert not list((paths.work / "uploads").iterdir())


def test_an_interrupted_upload_leaves_nothing_behind(paths, portal):
    client, csrf = sign_in(portal, GTM_USER)
    boundary = "hmo-test-boundary"
    cut = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
           f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"half.csv\"\r\n\r\n"
           "GTM,2024-01,ENTRY\n").encode()  # no closing boundary: the connection ended mid-file
    answer = client.post("/c/GTM/upload", content=cut,
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 400
    assert not list((paths.work / "uploads").iterdir())
    assert not (paths.inbox / "GTM").exists() or not list((paths.inbox / "GTM").iterdir())


def test_the_portal_speaks_the_users_language_and_switches(paths, portal):
    pan, csrf = sign_in(portal, PAN_USER)  # an English speaker's account
    assert "Submissions" in pan.get("/c/PAN/").text
    switched = pan.post("/language", data={"csrf": csrf, "language": "es", "back": "/c/PAN/"})
    assert switched.url.path == "/c/PAN/" and "Envíos" in switched.text
    elsewhere = pan.post("/language", data={"csrf": csrf, "language": "en", "back": "//evil.example/"},
                         follow_redirects=False)
    assert elsewhere.headers["location"] == "/"  # never an address outside the portal
    assert "Iniciar sesión" in browser(portal).get("/signin").text
    assert "Sign in" in browser(portal).get("/signin?lang=en").text


def test_the_ppt_sees_every_countrys_months_at_a_glance_and_a_country_only_its_own(paths, portal):
    last_month = recent_months()[-1]
    publish_status(paths, [("GTM", last_month.isoformat(), "2000-01-05", "accepted", True),
                           ("PAN", last_month.isoformat(), "2000-01-15", "rejected", False)])
    ppt, _ = sign_in(portal, PPT_USER)
    page = ppt.get("/").text
    gtm_line = re.search(r'<tr id="overview-GTM">.*?</tr>', page, re.S).group(0)
    pan_line = re.search(r'<tr id="overview-PAN">.*?</tr>', page, re.S).group(0)
    assert "cal-late" in gtm_line and "cal-rejected" in pan_line
    assert len(re.findall(r'<tr id="overview-', page)) == len(ISO3_MEMBERS)

    gtm, _ = sign_in(portal, GTM_USER)
    answer = gtm.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].endswith("/c/GTM/")


def test_the_monthly_reports_and_the_staff_data_docs_open_for_the_staff_only(paths, portal):
    report = paths.reports / "2024-02" / "report.es.html"
    report.parent.mkdir(parents=True)
    report.write_text("<p>informe de febrero</p>", encoding="utf-8")
    staff_docs = paths.data_docs / "sites" / "staff" / "index.html"
    staff_docs.parent.mkdir(parents=True)
    staff_docs.write_text("<p>every country</p>", encoding="utf-8")

    ppt, _ = sign_in(portal, PPT_USER)
    assert 'href="/reports/2024-02/report.es.html"' in ppt.get("/").text
    assert ppt.get("/reports/2024-02/report.es.html").text == "<p>informe de febrero</p>"
    # The report's own link to the Data Docs (../../data_docs/sites/staff/index.html) opens here too.
    assert ppt.get("/data_docs/sites/staff/index.html").text == "<p>every country</p>"
    assert ppt.get("/reports/../portal/accounts.sqlite3").status_code == 404
    assert ppt.get("/reports/%2e%2e/portal/accounts.sqlite3").status_code == 404

    gtm, _ = sign_in(portal, GTM_USER)
    assert gtm.get("/reports/2024-02/report.es.html").status_code == 404
    assert gtm.get("/data_docs/sites/staff/index.html").status_code == 404


def test_a_problem_value_that_starts_like_a_formula_is_text_in_the_problems_csv():
    from portal.app import problems_csv

    receipt = {"problems": [{"rule": "R03", "severity": "error", "row": 2, "column": "nationality",
                             "value": "=cmd|' /C calc'!A0", "message_es": "-", "message_en": "@sum(A1)"},
                            {"rule": "R04", "severity": "error", "row": 3, "column": "count", "value": "-5"}]}
    rows = list(csv.DictReader(io.StringIO(problems_csv(receipt).lstrip("\ufeff"))))
    assert [r["value"] for r in rows] == ["'=cmd|' /C calc'!A0", "-5"]  # a plain number runs nothing
    assert (rows[0]["message_es"], rows[0]["message_en"], rows[0]["row"]) == ("'-", "'@sum(A1)", "2")
