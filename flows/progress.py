"""What `hmo run`, `demo` and `build` tell a person while they work, and where their logs go.

While a command works, stderr shows each stage as it starts and what it did when
it ends, and each inbox file as ingest reads it: on a terminal as a live display
(a spinner per stage, and the dbt node or file being worked on), elsewhere (CI,
pipes, `--verbose`) as plain lines. Then the command prints its summary on
stdout, as it always has. Prefect's and dbt's own log lines, and what each stage
did in detail, go to the run's log file, `<data>/logs/<command>-<UTC time>.log`,
and with `--verbose` to stderr as well.

The stages report here through `run_stage` (the Prefect task of each stage, or
`call` without Prefect) and dbt through `dbt_event`, a dbtRunner callback: both
do nothing unless a `Watch` is active, so the benchmark and the tests that call
the stages directly see no output.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Protocol, Sequence, Union

from hmo.settings import Paths

if TYPE_CHECKING:
    from dbt_common.events.base_types import EventMsg

Logger = Union[logging.Logger, logging.LoggerAdapter]  # a Prefect run logger is an adapter

# A stage's lines when no Prefect run logger is given (`hmo build`), and dbt's there.
STAGE_LOG = logging.getLogger("hmo.run")
# Loggers of ours that say what happens, switched to INFO while a run is watched.
OUR_LOGGERS = ("hmo", "ingest")
_DBT_LEVELS = {"info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(where)s: %(message)s"


class Display(Protocol):
    def started(self, stage: str) -> None: ...
    def note(self, stage: str, text: str, lasting: bool) -> None: ...  # lasting: a line in plain output too
    def finished(self, stage: str, headline: str, seconds: float) -> None: ...
    def failed(self, stage: str, seconds: float) -> None: ...
    def close(self) -> None: ...


class Silent:
    """No display: a stage run outside `hmo run`, `demo` or `build`."""

    def started(self, stage: str) -> None:
        pass

    def note(self, stage: str, text: str, lasting: bool) -> None:
        pass

    def finished(self, stage: str, headline: str, seconds: float) -> None:
        pass

    def failed(self, stage: str, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass


class Lines:
    """One plain line per event, for a CI log or a pipe: no animation, no escape codes."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()  # dbt reports from its own threads

    def _write(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def started(self, stage: str) -> None:
        self._write(f"{stage}: started")

    def note(self, stage: str, text: str, lasting: bool) -> None:
        if lasting:
            self._write(f"{stage}: {text}")

    def finished(self, stage: str, headline: str, seconds: float) -> None:
        self._write(f"{stage}: done in {seconds:.1f} s: {headline}")

    def failed(self, stage: str, seconds: float) -> None:
        # What failed is said once, by the command's own error line or the summary.
        self._write(f"{stage}: failed after {seconds:.1f} s")

    def close(self) -> None:
        pass


class Live:
    """On a terminal: a row per stage, its spinner and what it works on now, then what it did."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
        from rich.table import Column
        from rich.text import Text

        class Mark(SpinnerColumn):
            def render(self, task: Any) -> Any:
                mark = task.fields.get("mark")
                return Text.from_markup(mark) if mark else super().render(task)

        self._stream = stream
        self._tasks: dict[str, TaskID] = {}
        # A long description (a path, a file name) is cut, never the mark or the stage.
        self._progress = Progress(
            Mark(table_column=Column(width=1, no_wrap=True)),
            TextColumn("[bold]{task.fields[stage]}", table_column=Column(width=9, no_wrap=True)),
            TextColumn("{task.description}", markup=False,
                       table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            TimeElapsedColumn(), console=Console(file=stream), expand=True,
            redirect_stdout=False, redirect_stderr=False)
        self._progress.start()

    def started(self, stage: str) -> None:
        if stage in self._tasks:  # tried again: the same row
            self._progress.reset(self._tasks[stage], description="", mark="")
        else:
            self._tasks[stage] = self._progress.add_task("", stage=stage, mark="", total=None)

    def note(self, stage: str, text: str, lasting: bool) -> None:
        if stage in self._tasks:
            self._progress.update(self._tasks[stage], description=text)

    def finished(self, stage: str, headline: str, seconds: float) -> None:
        self._progress.update(self._tasks[stage], description=headline, mark="[green]✓", total=1, completed=1)

    def failed(self, stage: str, seconds: float) -> None:
        self._progress.update(self._tasks[stage], description="failed", mark="[red]✗", total=1, completed=1)

    def close(self) -> None:
        self._progress.stop()
        # After a stop signal the command's streams swallow output (flows.writer), the
        # escape that shows the cursor again included: send that one past them.
        with contextlib.suppress(OSError, ValueError):
            os.write(self._stream.fileno(), b"\x1b[?25h")


class _RunFormatter(logging.Formatter):
    """Prefect's run loggers name the flow or task run in the record; the line says it."""

    def format(self, record: logging.LogRecord) -> str:
        run = getattr(record, "task_run_name", None) or getattr(record, "flow_run_name", None)
        record.where = f"{record.name} [{run}]" if run else record.name
        return super().format(record)


class _Stderr(logging.Handler):
    """--verbose: log lines to whatever sys.stderr is when they come (the CLI wraps it during a command)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging's own rule: a handler never raises
            self.handleError(record)


class _Notes(logging.Handler):
    """Ingest's line per file, shown as progress of the stage that runs."""

    def emit(self, record: logging.LogRecord) -> None:
        display().note(_current[0] if _current else "ingest", record.getMessage(), True)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


# A run's log is for finding out what went wrong in it; what was decided stays in the receipts and the
# event log. So logs go after LOG_DAYS, but the newest LOG_KEEP always stay, however old.
LOG_DAYS = 90
LOG_KEEP = 50


def prune_logs(folder: Path, days: int = LOG_DAYS, keep: int = LOG_KEEP) -> list[Path]:
    """Remove the commands' logs in `folder` older than `days`, but for the newest `keep`; returns them."""
    logs = []
    for path in folder.glob("*.log"):
        with contextlib.suppress(FileNotFoundError):  # another command pruning at the same moment
            logs.append((path.stat().st_mtime, path))
    logs.sort(reverse=True)
    cutoff = time.time() - days * 86400
    removed = [path for modified, path in logs[keep:] if modified < cutoff]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _new_log(folder: Path, command: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    prune_logs(folder)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        path = folder / (f"{command}-{stamp}.log" if n == 1 else f"{command}-{stamp}-{n}.log")
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: no free name for the log of `hmo {command}` at {stamp}")


class Watch:
    """While active: the display on stderr, the log file, Prefect's and dbt's console output off
    (or to stderr with `verbose`). Everything it changes is put back on exit."""

    def __init__(self, paths: Paths, command: str, verbose: bool = False) -> None:
        self.log_path = _new_log(paths.root / "logs", command)
        self.verbose = verbose
        self.display: Display = Silent()
        self._command = command
        self._undo = contextlib.ExitStack()
        self._handlers: list[logging.Handler] = []

    def __enter__(self) -> "Watch":
        try:
            return self._enter()
        except BaseException:
            self._undo.close()
            raise

    def _enter(self) -> "Watch":
        global _watching
        undo = self._undo
        stream = sys.stderr
        live = not self.verbose and _is_terminal(sys.stdout) and _is_terminal(stream)
        self.display = Live(stream) if live else Lines(stream)
        undo.callback(self.display.close)

        file = logging.FileHandler(self.log_path, encoding="utf-8")
        undo.callback(file.close)
        self._handlers = [file, *([_Stderr()] if self.verbose else [])]
        for handler in self._handlers:
            handler.setFormatter(_RunFormatter(LOG_FORMAT))
            self._attach(logging.getLogger(), handler)
        for name in OUR_LOGGERS:
            logger = logging.getLogger(name)
            undo.callback(logger.setLevel, logger.level)
            logger.setLevel(logging.INFO)
        self._attach(logging.getLogger("ingest"), _Notes())
        logging.captureWarnings(True)  # a library's warning goes to the log, not between the progress lines
        undo.callback(logging.captureWarnings, False)
        # dbt's console: nothing (dbt_event logs its lines); its own log file is kept as it is.
        undo.enter_context(_environ("DBT_LOG_LEVEL", "none"))
        undo.callback(_stop_watching)
        _watching = self
        _DbtCost.reset()
        STAGE_LOG.info("hmo %s: log of this run (pid %d)", self._command, os.getpid())
        self.quiet_prefect()
        return self

    def _attach(self, logger: logging.Logger, handler: logging.Handler) -> None:
        logger.addHandler(handler)
        self._undo.callback(logger.removeHandler, handler)

    def quiet_prefect(self) -> None:
        """Take Prefect's console handlers off while the run is watched: its lines go to the log file
        (and, verbose, to stderr through ours). Call again once Prefect is imported: it sets its
        handlers up when first imported."""
        loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict.values()
                                          if isinstance(logger, logging.Logger))]
        for logger in loggers:
            for handler in list(logger.handlers):
                if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) \
                        and type(handler).__module__.startswith("prefect."):
                    logger.removeHandler(handler)
                    self._undo.callback(logger.addHandler, handler)
                    if not logger.propagate:  # prefect._internal, uvicorn: their lines would reach no handler
                        for ours in self._handlers:
                            self._attach(logger, ours)

    def __exit__(self, *exc: object) -> None:
        if _DbtCost.events:
            STAGE_LOG.info("dbt_event: %d dbt events, %d lines logged, %.3f s of CPU in the callback",
                           _DbtCost.events, _DbtCost.lines, _DbtCost.seconds)
        self._undo.close()


def _stop_watching() -> None:
    global _watching
    _watching = None


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


_watching: Watch | None = None
# The stage that runs, its logger, and its context (Prefect's task run and settings live in context
# variables, which dbt's worker threads do not inherit): dbt_event's threads read it.
_current: tuple[str, Logger, contextvars.Context] | None = None


def display() -> Display:
    return _watching.display if _watching else _SILENT


_SILENT = Silent()


@contextlib.contextmanager
def step(stage: str) -> Iterator[list[str]]:
    """A step of the command that is no stage (starting Prefect): shown as one; append its headline."""
    headline: list[str] = []
    shown = display()
    shown.started(stage)
    started = time.monotonic()
    try:
        yield headline
    except BaseException:
        shown.failed(stage, time.monotonic() - started)
        raise
    shown.finished(stage, headline[0] if headline else "done", time.monotonic() - started)


def run_stage(stage: str, function: Callable[..., Any], args: Sequence[Any], logger: Logger = STAGE_LOG,
              attempt: int = 1, attempts: int = 1) -> Any:
    """Run one stage: shown while it runs, and what it did in `logger` (a Prefect task's run logger)."""
    global _current
    shown = display()
    shown.started(stage)
    if attempt > 1:
        logger.warning("%s: attempt %d of %d", stage, attempt, attempts)
    _current = (stage, logger, contextvars.copy_context())
    started = time.monotonic()
    try:
        result = function(*args)
    except BaseException:
        shown.failed(stage, time.monotonic() - started)
        raise
    finally:
        _current = None
    headline, details = describe(stage, result)
    for line in (headline, *details):
        logger.info("%s: %s", stage, line)
    shown.finished(stage, headline, time.monotonic() - started)
    return result


def call(stage: str, function: Callable[..., Any], *args: Any) -> Any:
    """`flows.stages.run`'s `call` without Prefect (`hmo build`): each stage shown and logged."""
    return run_stage(stage, function, args)


class _DbtCost:
    """Time spent in dbt_event during a watched command, said at the end of its log (docs/benchmarks.md)."""

    events = 0
    lines = 0
    seconds = 0.0

    @classmethod
    def reset(cls) -> None:
        cls.events, cls.lines, cls.seconds = 0, 0, 0.0


def dbt_event(event: "EventMsg") -> None:
    """A dbtRunner callback: the lines dbt would print go to the stage's log, its nodes to the display.

    dbt calls it for every event (hundreds per build, most of them debug), from
    its worker threads: what is not shown returns at once.
    """
    # CPU time of the calling thread: dbt's threads wait for each other, which is not this callback's cost.
    began = time.thread_time()
    info = event.info
    stage, logger, context = _current or ("dbt", STAGE_LOG, None)
    if info.name == "NodeStart":
        node = getattr(event.data, "node_info", None)
        display().note(stage, f"dbt: {getattr(node, 'resource_type', '')} {getattr(node, 'node_name', '')}", False)
    level = _DBT_LEVELS.get(info.level)
    if level is not None:
        # EventInfo's Protocol omits `msg`, the line dbt prints (dbt_common.events.base_types).
        line = getattr(info, "msg", "")
        if context is None:
            logger.log(level, "dbt: %s", line)
        else:
            # In the stage's context, or Prefect would look for an API from dbt's thread and, finding
            # none there, start a temporary server of its own. A copy: threads may log at once.
            context.copy().run(logger.log, level, "dbt: %s", line)
        _DbtCost.lines += 1
    _DbtCost.events += 1
    _DbtCost.seconds += time.thread_time() - began


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def describe(stage: str, result: Any) -> tuple[str, list[str]]:
    """What a stage did: a headline for the display, and the detail for the log."""
    if stage == "ingest":
        new = [r for r in result.received if not r.duplicate_of]
        duplicates = [r for r in result.received if r.duplicate_of]
        parts = [f"{len(new)} new"] if result.received else []
        if duplicates:
            parts.append(_plural(len(duplicates), "duplicate"))
        if result.failed:
            parts.append(f"{len(result.failed)} not read")
        if result.refused:
            parts.append(f"{len(result.refused)} refused")
        details = [*(f"received {r.country}/{r.file_name} as submission {r.submission_id}" for r in new),
                   *(f"duplicate {r.country}/{r.file_name} of submission {r.duplicate_of}" for r in duplicates),
                   *(f"not read {item.country}/{item.file_name}: {error}" for item, error in result.failed),
                   *(f"refused inbox/{refusal.shown}: {refusal.reason}" for refusal in result.refused)]
        return (", ".join(parts) if parts else "no new files in the inbox"), details
    if stage == "validate":
        accepted = sum(v.status == "accepted" for v in result)
        details = [f"{v.status} {v.country}/{v.file_name} [submission {v.submission_id}]"
                   + (f" ({', '.join(v.rules_failed)})" if v.rules_failed else "") for v in result]
        if not result:
            return "no submission to validate", details
        return f"{_plural(len(result), 'submission')}: {accepted} accepted, {len(result) - accepted} rejected", details
    if stage == "audit":
        rejected = result.rejected if result else {}
        details = [f"submission {sid} rejected (A01): {', '.join(tests)}" for sid, tests in rejected.items()]
        headline = "marts built and tested"
        return headline + (f"; {_plural(len(rejected), 'submission')} rejected by them (A01)" if rejected else ""), \
            details
    if stage == "receipts":
        details = [*(f"wrote {path}" for path in result.written),
                   *(f"no receipt yet for {what}: {why}" for what, why in result.failed)]
        return _plural(len(result.written), "receipt") + " written" + \
            (f", {len(result.failed)} not yet" if result.failed else ""), details
    if stage == "publish":
        return f"readers now open {result}", []
    if stage == "report":
        return f"wrote {result}", []
    return "done", []
