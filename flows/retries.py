"""Which failures of a stage are worth another try, and how often.

A stage is tried again only when what failed may pass a moment later: the
DuckDB file lock held by another process (an analyst's client opened the live
warehouse instead of the published copy, a `duckdb` shell left open), an
operating-system error that says "try again", or a server that could not be
reached or said "try later" (the mail server the monthly report goes through:
refused or reset connections, time-outs, SMTP 4xx answers). A rule failure is a verdict, not
an error; an `HmoError` describes bad input or a state a person must fix; a dbt
test that fails fails the same way again: none of them is retried.

Every stage may run again after a failure: each one opens its connections
itself and the pipeline converges after a kill at any point (docs/reliability.md).
"""
from __future__ import annotations

import errno
import smtplib
from typing import TYPE_CHECKING, Iterator

import duckdb

if TYPE_CHECKING:  # Prefect is imported by the flow, not by this module's other users
    from prefect import Task
    from prefect.client.schemas.objects import TaskRun
    from prefect.states import State

# Up to three more tries, 1, 2 and 4 s apart: a lock held for up to ~7 s is waited out.
RETRIES = 3
RETRY_DELAYS = [1.0, 2.0, 4.0]

# DuckDB's words when another process holds the file (duckdb.IOException, also through dbt).
DUCKDB_LOCK = "Could not set lock on file"
TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what caused it (`raise ... from`, or raised while handling)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether `exc`, or what caused it, is a failure that may pass if the stage runs again."""
    for error in _chain(exc):
        if isinstance(error, duckdb.IOException) and DUCKDB_LOCK in str(error):
            return True
        if isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS:
            return True
        if isinstance(error, (ConnectionError, TimeoutError, smtplib.SMTPServerDisconnected)):
            return True
        if isinstance(error, smtplib.SMTPResponseException) and 400 <= error.smtp_code < 500:
            return True
    return False


def retry_when_transient(task: "Task", task_run: "TaskRun", state: "State") -> bool:
    """Prefect's `retry_condition_fn`: called with the failed state, True to retry.

    It must stay a plain function: Prefect 3.8 calls only functions
    (`inspect.isfunction`) and treats any other callable as "never retry".
    """
    from prefect import get_run_logger

    from flows import progress

    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the task's own failure, classified here
        if not is_transient(exc):
            return False
        # Prefect asks only while tries are left; run_count is the attempts made so far.
        attempt = task_run.run_count
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
        why = f"{exc}; trying again in {delay:g} s (attempt {attempt + 1} of {RETRIES + 1})"
        get_run_logger().warning("%s: %s", task.name, why)
        progress.display().note(task.name, why, True)
        return True
    return False
