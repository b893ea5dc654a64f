"""`hmo serve`'s inbox watcher (flows/watcher.py), without the service: when a file counts as complete,
and the real pipeline giving a dropped file its receipt, waiting for another writer first."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from conftest import drop, drop_sample
from flows.watcher import InboxWatcher, _seen
from flows.writer import writer_lock
from hmo.settings import Paths


def _watcher(paths: Paths, said: list[str], **timing: float) -> InboxWatcher:
    return InboxWatcher(paths, threading.Lock(), said.append, **{"poll": 0.05, "quiet": 2.0, "retry": 0.5, **timing})


def _until(condition, timeout: float, what: str, said: list[str] | None = None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:g} s; the watcher said: {said}")
        time.sleep(0.05)
    return found


def _receipts(paths: Paths, country: str) -> list[Path]:
    folder = paths.outbox / country
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_file_still_open_for_writing_waits_and_counts_as_complete_once_closed(paths):
    said: list[str] = []
    watcher = _watcher(paths, said, quiet=3600.0)  # only inotify's close can make it complete here
    target = paths.inbox / "PAN" / "enero.csv"
    # The country's folder exists first: a folder made after the watch began is watched a moment later.
    target.parent.mkdir(parents=True, exist_ok=True)
    watcher.observe()
    try:
        with target.open("w") as writing:
            writing.write("reporting_country,period\n")
            writing.flush()
            time.sleep(0.3)
            assert watcher.waiting() == ([target], False)
        _until(lambda: watcher.waiting() == ([target], True), 5, "the closed file was not complete")
    finally:
        watcher.stop(timeout=5)


def test_a_file_moved_into_place_is_complete_at_once(paths):
    watcher = _watcher(paths, [], quiet=3600.0)
    written = paths.inbox / "PAN" / "enero.csv.partial"  # an uploader's name for a file still arriving
    written.parent.mkdir(parents=True, exist_ok=True)
    watcher.observe()
    try:
        drop(paths, "PAN", written.name, "reporting_country,period\n")
        assert watcher.waiting() == ([], True)  # the partial name is not read at all
        os.replace(written, written.with_suffix(""))
        _until(lambda: watcher.waiting() == ([written.with_suffix("")], True), 5, "the moved file was not complete")
    finally:
        watcher.stop(timeout=5)


def test_without_events_a_file_is_complete_after_its_quiet_seconds(paths):
    watcher = _watcher(paths, [], quiet=2.0)  # not observing: no inotify, as on a network file system
    target = drop(paths, "PAN", "enero.csv", "reporting_country,period\n")
    assert watcher.waiting() == ([target], False)
    _age(target, 2.5)
    assert watcher.waiting() == ([target], True)


def test_a_file_a_run_left_in_the_inbox_starts_no_run_until_it_changes(paths):
    said: list[str] = []
    watcher = _watcher(paths, said)
    target = drop(paths, "PAN", "enero.csv", "reporting_country,period\n")
    _age(target, 10)
    watcher._left = {target: _seen(target)}  # as run_once records what it leaves
    assert watcher.waiting() == ([], True)
    target.write_text("reporting_country,period\nPAN,2024-01\n")
    _age(target, 10)
    assert watcher.waiting() == ([target], True)


def test_a_dropped_file_gets_its_receipt_after_the_writer_that_holds_the_warehouse(paths):
    said: list[str] = []
    watcher = _watcher(paths, said, quiet=0.2)
    with writer_lock(paths.writer_lock, "hmo run (the test)"):
        watcher.start()
        try:
            drop_sample(paths, "PAN")
            _until(lambda: any("inbox: waiting" in line for line in said), 30, "the watcher did not wait")
            assert any("hmo run (the test)" in line for line in said if "waiting" in line)
            time.sleep(0.5)
            assert _receipts(paths, "PAN") == [] and watcher.runs == 0
        except BaseException:
            watcher.stop(timeout=120)
            raise
    try:
        receipts = _until(lambda: _receipts(paths, "PAN"), 180, "no receipt for the dropped file", said)
        assert [r.name for r in receipts] == ["panama_transitos_2024-01_02.csv.1.accepted.json"]
        assert not list((paths.inbox / "PAN").iterdir())  # archived, not left
        _until(lambda: any("inbox: run 1 took" in line for line in said), 30, "the run's summary was not said")
        assert any("inbox: accepted  PAN/panama_transitos_2024-01_02.csv [submission 1]" in line for line in said)
        # A second file is read by the same warm pipeline.
        drop_sample(paths, "GTM")
        rejected = _until(lambda: _receipts(paths, "GTM"), 120, "no receipt for the second file", said)
        assert rejected[0].name.endswith(".rejected.json")
        _until(lambda: watcher.runs == 2, 30, "the second run did not end")
    finally:
        watcher.stop(timeout=120)
