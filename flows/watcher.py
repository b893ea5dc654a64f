"""`hmo serve`'s inbox watcher: a file dropped into `data/inbox/<ISO3>/` gets its receipt, no command run.

The pipeline runs here, in a thread of the service, not as an `hmo run` child:
a new process pays 5–10 s of imports and a dbt parse before its first row,
while here dbt and Great Expectations stay imported and the dbt manifest stays
parsed (`harmonise.dbt.DbtProject` keeps it until a project file changes). A
10,000-row file then has its receipt in about two seconds (docs/benchmarks.md,
"hmo serve: receipt after a drop"). It is still `flows.stages.run`, the one
order of the stages, under the one cross-process writer lock
(`flows.writer.writer_lock`) that `hmo run` and the scheduled monthly run
take: whoever holds it reads the inbox, and the watcher takes what is left when
it is free again.

When to run: inotify (watchdog) says at once that a file was closed after
writing or moved into place; a file still being written waits. Without such
an event (a network file system; a folder made a moment before its file,
whose watch comes too late) a file counts as complete once it has not changed
for `quiet` seconds, and the inbox is looked at every `poll` seconds anyway. Every waiting file must be
complete before a run starts, because ingest reads the whole inbox; one that
grows even while it is read stays in the inbox for the next run (ingest's
fstat check). A file that a run leaves in the inbox (unreadable, say) does
not start another run until it changes. A run that fails is said on the
service's output and tried again after `retry` seconds.

Checks and runs use Great Expectations' process-wide context and dbt-duckdb's
process-wide connection, so they take turns through one lock of the service
(`exclusive`).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import duckdb

from flows.writer import WriterBusy, writer_lock
from hmo.errors import HmoError
from hmo.settings import Paths

if TYPE_CHECKING:
    from harmonise.dbt import DbtProject

POLL_SECONDS = 1.0
QUIET_SECONDS = 2.0
RETRY_SECONDS = 30.0
COMMAND = "hmo serve (inbox watcher)"


@dataclass(frozen=True)
class Seen:
    """A file's state in the inbox: when it changes, it is another file to read."""
    size: int
    mtime_ns: int
    inode: int


def _seen(path: Path) -> Seen | None:
    try:
        info = path.stat(follow_symlinks=False)
    except OSError:
        return None
    return Seen(info.st_size, info.st_mtime_ns, info.st_ino)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class _Events:
    """What inotify said of each inbox file: closed after writing (complete) or written to (not yet)."""

    def __init__(self, wake: threading.Event) -> None:
        self._lock = threading.Lock()
        self._complete: dict[str, bool] = {}
        self._wake = wake

    def complete(self, path: str) -> None:
        with self._lock:
            self._complete[path] = True
        self._wake.set()

    def writing(self, path: str) -> None:
        with self._lock:
            self._complete[path] = False
        self._wake.set()

    def closed(self, path: Path) -> bool | None:
        """True: closed or moved in since its last write; False: written to since; None: never heard of."""
        with self._lock:
            return self._complete.get(str(path))

    def forget(self, keep: set[str]) -> None:
        with self._lock:
            self._complete = {path: done for path, done in self._complete.items() if path in keep}


def _observe(inbox: Path, events: _Events) -> object:
    """A started watchdog observer on the inbox (recursive: country folders made later are watched too)."""
    from watchdog.events import (DirCreatedEvent, FileClosedEvent, FileCreatedEvent, FileModifiedEvent,
                                 FileMovedEvent, FileSystemEvent, FileSystemEventHandler)
    from watchdog.observers import Observer

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if isinstance(event, FileClosedEvent):
                events.complete(os.fsdecode(event.src_path))
            elif isinstance(event, FileMovedEvent):
                events.complete(os.fsdecode(event.dest_path))
            elif isinstance(event, (FileCreatedEvent, FileModifiedEvent)):
                events.writing(os.fsdecode(event.src_path))
            elif isinstance(event, DirCreatedEvent):
                events.writing(os.fsdecode(event.src_path))  # a file may be in it before its watch is

    observer = Observer()
    observer.schedule(Handler(), str(inbox), recursive=True)
    observer.daemon = True
    observer.start()
    return observer


class InboxWatcher:
    """Runs the pipeline whenever complete files wait in the inbox; `request()` asks for a look now.

    `running` says whether a run is under way (the portal shows a waiting file as
    being validated). `start()` and `stop()` are the service's.
    """

    def __init__(self, paths: Paths, exclusive: threading.Lock, say: Callable[[str], None],
                 poll: float = POLL_SECONDS, quiet: float = QUIET_SECONDS, retry: float = RETRY_SECONDS) -> None:
        self.paths = paths
        self._exclusive = exclusive
        self._say = say
        self._poll, self._quiet, self._retry = poll, quiet, retry
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._events = _Events(self._wake)
        self._observer: object | None = None
        self._thread: threading.Thread | None = None
        self._dbt: DbtProject | None = None
        self._left: dict[Path, Seen] = {}   # files the last run left in the inbox, as they were then
        self._busy_said = False
        self._not_before = 0.0               # after a failed run, when to try again
        self.running = False
        self.runs = 0

    # ------------------------------------------------------------------ life

    def observe(self) -> None:
        """Hear inotify's events on the inbox (what `waiting` judges files by), without running anything."""
        self.paths.inbox.mkdir(parents=True, exist_ok=True)
        try:
            self._observer = _observe(self.paths.inbox, self._events)
        except OSError as exc:  # inotify refused (its watch limit, say): looking every `poll` seconds still works
            self._say(f"hmo serve: the inbox is looked at every {self._poll:g} s ({exc.strerror or exc})")

    def start(self) -> None:
        self.observe()
        self._thread = threading.Thread(target=self._loop, name="hmo-inbox-watcher", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """After the run under way, if any: a run is not cut short (a kill would be safe, but slower to undo)."""
        self._stopping.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ when

    def waiting(self) -> tuple[list[Path], bool]:
        """The inbox's files that no run has left there as they are, and whether all of them are complete."""
        from ingest.submissions import discover

        files = [item.path for item in discover(self.paths)]
        self._events.forget({str(path) for path in files})
        fresh = [path for path in files if self._left.get(path) is None or self._left[path] != _seen(path)]
        now = time.time()
        complete = True
        for path in fresh:
            seen = _seen(path)
            closed = self._events.closed(path)
            # inotify may miss the close (of a file in a folder made a moment before it), so quiet counts too.
            if seen is None or (not closed and now - seen.mtime_ns / 1e9 < self._quiet):
                complete = False
        return fresh, complete

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._poll)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                fresh, complete = self.waiting()
            except OSError as exc:
                self._say(f"{_now()} inbox: cannot be listed ({exc.strerror or exc})")
                continue
            if not fresh or time.monotonic() < self._not_before:
                continue
            if not complete:
                # Look again soon: the file's close (or its quiet seconds) is a moment away.
                self._wake.wait(min(self._poll, 0.1))
                self._wake.set()
                continue
            self.run_once()

    # ------------------------------------------------------------------ what

    def run_once(self) -> None:
        """One run of the pipeline on what the inbox holds, said on the service's output."""
        from flows import stages

        started = time.perf_counter()
        try:
            with writer_lock(self.paths.writer_lock, COMMAND), self._exclusive:
                self._busy_said = False
                self.running = True
                try:
                    if self._dbt is None:
                        from harmonise.dbt import DbtProject

                        self._dbt = DbtProject(self.paths)
                    summary = stages.run(self.paths, self._dbt)
                finally:
                    self.running = False
        except WriterBusy as exc:
            if not self._busy_said:  # once per wait; the holder reads the inbox itself
                self._say(f"{_now()} inbox: waiting, {exc}")
                self._busy_said = True
            return
        except Exception as exc:  # noqa: BLE001 - whatever it was, the service and its watcher go on
            expected = isinstance(exc, (HmoError, duckdb.Error, OSError))
            message = (str(exc).splitlines() or [""])[0] if expected else f"{type(exc).__name__}: {exc}"
            self._say(f"{_now()} inbox: the run failed ({message}); trying again in {self._retry:g} s")
            if not expected:
                import traceback

                traceback.print_exc()  # a defect of ours: its traceback goes to the service's log
            self._not_before = time.monotonic() + self._retry
            return
        self.runs += 1
        from ingest.submissions import discover

        self._left = {item.path: seen for item in discover(self.paths) if (seen := _seen(item.path))}
        seconds = time.perf_counter() - started
        for line in summary.lines():
            self._say(f"{_now()} inbox: {line}")
        self._say(f"{_now()} inbox: run {self.runs} took {seconds:.2f} s")
