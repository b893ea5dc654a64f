"""How a command holds the warehouse and lets go of it: one writer at a time, clean stops.

DuckDB lets one process write the file, but it says so late (after a run has
started Prefect and dbt, up to a minute in) and from deep inside dbt ("Could not
set lock"). An advisory `flock` on data/writer.lock, taken before anything
heavy, says it within a second, with who holds it. The kernel drops a flock
however its holder ends (SIGKILL included), so a file left behind never blocks:
its contents only say who held it last.

A stop request (SIGTERM from a service manager, Ctrl-C) becomes an exception
that unwinds the command, so the temporary Prefect server is stopped and the
lock released on the way out, and `hmo` says one line instead of a traceback.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType, TracebackType
from typing import Callable, Iterable, Iterator, TextIO

from hmo.errors import HmoError

_POLL_SECONDS = 0.2
# A refused writer may read the file while its holder is between taking the lock
# and writing its name (or just releasing it): look again for this long.
_SETTLE_SECONDS = 1.0


class WriterBusy(HmoError):
    """Another hmo command holds the warehouse for writing."""


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    since: str

    def __str__(self) -> str:
        return f"{self.command} (pid {self.pid}, since {self.since})"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _read_holder(fd: int) -> Holder | None:
    """Who holds the lock, if the file says so and that process still exists."""
    try:
        record = json.loads(os.pread(fd, 4096, 0))
        holder = Holder(int(record["pid"]), str(record["command"]), str(record["since"]))
    except (ValueError, KeyError, TypeError):
        return None  # empty (just taken or just released) or being rewritten
    return holder if process_alive(holder.pid) else None


def _write_holder(fd: int, command: str) -> None:
    since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    record = json.dumps({"pid": os.getpid(), "command": command, "since": since}).encode() + b"\n"
    # Write, then cut: a reader sees the old record, a mix (unparseable, read
    # again) or the new one, never an empty file mistaken for a finished writer.
    os.pwrite(fd, record, 0)
    os.ftruncate(fd, len(record))


def _lock_or_holder(fd: int) -> Holder | str | None:
    """None when the lock is ours; else who holds it (a description if the file cannot tell)."""
    deadline = time.monotonic() + _SETTLE_SECONDS
    while True:
        if _try_lock(fd):
            return None
        holder = _read_holder(fd)
        if holder is not None:
            return holder
        if time.monotonic() >= deadline:
            return "hmo command"
        time.sleep(0.05)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def writer_lock(path: Path, command: str, wait: float = 0.0,
                on_wait: Callable[[str], None] = _say) -> Iterator[None]:
    """Hold the writer lock for the block; refuse at once, or after `wait` seconds of polling."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open's descriptors are not inherited across exec, so the Prefect server
    # (a subprocess) can never keep the lock alive after the run has gone.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        holder = _lock_or_holder(fd)
        if holder is not None and wait > 0:
            on_wait(f"hmo: waiting up to {wait:g} s for {holder} to finish writing the warehouse")
            deadline = time.monotonic() + wait
            while holder is not None and time.monotonic() < deadline:
                time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
                holder = _lock_or_holder(fd)
            if holder is not None:
                raise WriterBusy(f"another {holder} is still writing the warehouse after {wait:g} s; "
                                 "try again when it ends, or pass a longer --wait")
        if holder is not None:
            raise WriterBusy(f"another {holder} is writing the warehouse; "
                             "try again when it ends, or pass --wait SECONDS")
        _write_holder(fd, command)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # nobody holds it now; the file stays (unlinking races the next taker)
    finally:
        os.close(fd)  # releases the lock


class Stopped(KeyboardInterrupt):
    """A stop signal arrived. A KeyboardInterrupt, so Prefect, dbt and `except
    Exception` clauses treat it as an interruption to unwind, not a failure to handle."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Gated:
    """A text stream that goes quiet once a stop signal has arrived.

    After a stop the one line `hmo` prints is the whole story. Unwinding, Prefect
    logs the crash with tracebacks to the console (the run's history still gets
    them through Prefect's API handler) and dbt reports its cancelled nodes.
    """

    def __init__(self, stream: TextIO, stopped: Callable[[], bool]) -> None:
        self._stream = stream
        self._stopped = stopped

    def write(self, text: str) -> int:
        return len(text) if self._stopped() else self._stream.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


class StopSignals:
    """While active, SIGTERM and SIGINT raise `Stopped` and silence stdout and stderr.

    During a flow run Prefect puts its own SIGTERM handler in place (raising its
    TerminationSignal), and DuckDB turns an interrupted query into
    `RuntimeError: Query interrupted`, dbt any BaseException into a failed
    result: the exception that reaches `main` need not say a stop came. The
    interpreter's wakeup fd does, whichever Python handler ran: C code writes
    the signal's number there the moment it arrives, before any Python code
    (a log call included) reacts to it.
    """

    SIGNALS = (int(signal.SIGTERM), int(signal.SIGINT))

    def __init__(self) -> None:
        self.received: int | None = None
        self._pipe: tuple[int, int] | None = None
        self._undo = contextlib.ExitStack()

    def _drain(self) -> None:
        if self._pipe is not None and self.received is None:
            with contextlib.suppress(BlockingIOError):
                arrived = [n for n in os.read(self._pipe[0], 512) if n in self.SIGNALS]
                self.received = arrived[0] if arrived else None

    def _arrived(self) -> bool:
        # While our handlers are in place they record a stop themselves: the pipe
        # is read (a system call per write) only while someone else's handler is.
        if self.received is None and any(signal.getsignal(n) != self._handle for n in self.SIGNALS):
            self._drain()
        return self.received is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = self.received or signum
        raise Stopped(signum)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only; leave them as they are
        self._pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for fd in self._pipe:
            self._undo.callback(os.close, fd)
        self._undo.callback(signal.set_wakeup_fd, signal.set_wakeup_fd(self._pipe[1], warn_on_full_buffer=False))
        for signum in self.SIGNALS:
            self._undo.callback(signal.signal, signum, signal.signal(signum, self._handle))
        self._undo.callback(setattr, sys, "stdout", sys.stdout)
        self._undo.callback(setattr, sys, "stderr", sys.stderr)
        sys.stdout = _Gated(sys.stdout, self._arrived)  # type: ignore[assignment]
        sys.stderr = _Gated(sys.stderr, self._arrived)  # type: ignore[assignment]
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._drain()
        self._pipe = None
        self._undo.close()
