"""The commands' logs (<data>/logs) do not grow for ever, and what is recent stays."""
from __future__ import annotations

import os
import time

from flows import progress
from hmo.settings import Paths


def test_a_new_commands_log_takes_away_old_logs_but_never_the_newest_fifty(paths: Paths) -> None:
    logs = paths.root / "logs"
    logs.mkdir()
    now = time.time()
    for n in range(60):  # two a day, going back 30 days, then 30 more a year old
        log = logs / f"run-{n:02d}.log"
        log.write_text("a run\n", encoding="utf-8")
        age = n * 43200 if n < 30 else 365 * 86400 + n
        os.utime(log, (now - age, now - age))
    other = logs / "notes.txt"
    other.write_text("kept\n", encoding="utf-8")

    with progress.Watch(paths, "build") as watch:
        pass

    kept = {path.name for path in logs.iterdir()}
    assert watch.log_path.name in kept and "notes.txt" in kept
    assert {f"run-{n:02d}.log" for n in range(30)} <= kept  # younger than 90 days
    assert {f"run-{n:02d}.log" for n in range(30, 50)} <= kept  # old, but among the newest 50 before it
    assert not {f"run-{n:02d}.log" for n in range(50, 60)} & kept
