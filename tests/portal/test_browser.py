"""The portal in a real browser: headless Chromium (Debian's) driven by Playwright, against a real `hmo serve`.

A statistician signs in, checks a file without sending it, sends a good and a bad file, waits for the
pipeline (`hmo run`, started by the portal) to answer both, opens the
rejected receipt, downloads its problems as CSV and signs out; then the PPT signs in to its
overview of every country. With
HMO_SCREENSHOTS set to a folder, each page is photographed there (the
pictures of docs/portal.md).

Without Chromium the test is skipped, unless HMO_REQUIRE_BROWSER=1 (which
.ci/run sets after installing it): there its absence is a failure.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SAMPLES, start_serve
from flows import service
from hmo.settings import Paths

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HMO = Path(sys.executable).parent / "hmo"
PASSWORD = "correct horse battery"
USER = "ana.lopez@ine.gob.gt"
PPT_USER = "ppt@cancilleria.example"

if not Path(CHROMIUM).exists():
    if os.environ.get("HMO_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"HMO_REQUIRE_BROWSER=1 but there is no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)", allow_module_level=True)


def _env(paths: Paths) -> dict[str, str]:
    env = {**os.environ, "HMO_DATA_DIR": str(paths.root)}
    env.pop(service.URL_ENV, None)
    return env


@pytest.fixture
def portal_url(tmp_path):
    paths = Paths(tmp_path / "data")
    for scope, email in (("GTM", USER), ("PPT", PPT_USER)):
        added = subprocess.run([str(HMO), "users", "add", scope, email, "--password-stdin"], input=PASSWORD + "\n",
                               capture_output=True, text=True, env=_env(paths), timeout=60)
        assert added.returncode == 0, added.stderr
    # The portal's pages and its inbox watcher; the monthly schedule has tests of its own (tests/flows/).
    process, state = start_serve(paths, tmp_path, _env(paths), subprocess.DEVNULL, tmp_path / "serve.err",
                                 "--no-schedule")
    try:
        yield state["url"] + "/portal", paths
    finally:
        process.terminate()  # the service stops the run it started, as on Ctrl-C
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    good = tmp_path / "transitos_guatemala.csv"
    good.write_bytes(next((SAMPLES / "PAN").iterdir()).read_bytes().replace(b"PAN", b"GTM"))
    bad = next((SAMPLES / "GTM").iterdir())
    return good, bad


def test_sign_in_send_a_good_and_a_bad_file_read_both_receipts_download_and_sign_out(portal_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, paths = portal_url
    shots = Path(os.environ["HMO_SCREENSHOTS"]) if os.environ.get("HMO_SCREENSHOTS") else None

    def shot(page, name: str) -> None:
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    good, bad = _inputs(tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(accept_downloads=True)
            page.goto(f"{url}/")
            expect(page).to_have_url(re.compile(r"/portal/signin$"))
            shot(page, "1-sign-in")
            page.fill("input[name=email]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("#sign-in")
            expect(page).to_have_url(re.compile(r"/portal/c/GTM/$"))

            # A dry run first: the answer the bad file would get, nothing loaded.
            page.set_input_files("#check-file", str(bad))
            page.click("#check")
            expect(page.locator("#verdict")).to_contain_text("rechazado")
            assert "R02" in page.locator("pre").inner_text()
            assert not (paths.inbox / "GTM").exists() or not list((paths.inbox / "GTM").iterdir())
            shot(page, "2-dry-run")
            page.goto(f"{url}/c/GTM/")

            page.set_input_files("#files", [str(good), str(bad)])
            # The progress bar's values, kept outside the page, which is left when the upload ends.
            progress: list[float] = []
            page.expose_function("recordProgress", lambda value: progress.append(value))
            page.evaluate("""() => { const bar = document.getElementById('upload-progress');
                new MutationObserver(() => { if (!bar.hidden) recordProgress(bar.value); })
                    .observe(bar, {attributes: true}); }""")
            page.click("#send")
            expect(page.locator("[role=status]")).to_contain_text("2")
            assert progress and progress[-1] == 100, progress
            shot(page, "3-sent")
            # The portal started `hmo run`; the page says where each file stands as it moves.
            deadline = time.monotonic() + 300
            while True:
                statuses = sorted(page.locator("#submissions td.status").all_inner_texts())
                if statuses == ["aceptado", "rechazado"]:
                    break
                assert time.monotonic() < deadline, f"no answer in 300 s: {statuses}; log: " + \
                    "".join(p.read_text(errors="replace")[-3000:] for p in (paths.root / "logs").glob("portal-*"))
                time.sleep(2)
                page.reload()
            shot(page, "4-answered")

            page.click("#submissions tr.rejected a")
            expect(page.locator("#verdict")).to_contain_text("rechazado")
            problems = page.locator("#problems tbody tr").count()
            assert problems > 0
            shot(page, "5-receipt")
            with page.expect_download() as download:
                page.click("#download-csv")
            rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8-sig"))))
            assert len(rows) == problems and {r["rule"] for r in rows} >= {"R02"}

            page.click("#switch-language")
            expect(page.locator("#verdict")).to_contain_text("rejected")
            page.goto(f"{url}/c/GTM/")
            page.click("#submissions tr.accepted a")
            expect(page.locator("#verdict")).to_contain_text("accepted")
            shot(page, "6-accepted-receipt")

            page.click("#sign-out")
            expect(page).to_have_url(re.compile(r"/portal/signin$"))
            page.goto(f"{url}/c/GTM/")
            expect(page).to_have_url(re.compile(r"/portal/signin"))

            # The PPT's first page: every member country's months at a glance.
            page.fill("input[name=email]", PPT_USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("#sign-in")
            expect(page.locator("#overview-GTM")).to_be_visible()
            assert page.locator("#overview tbody tr").count() == 23
            shot(page, "7-overview")
        finally:
            browser.close()
