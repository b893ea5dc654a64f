"""The whole pipeline as one Prefect flow: `flows.stages.run`, each stage a Prefect task.

`hmo_run` is what `hmo run` calls, inside the writer lock the command took;
`hmo_monthly` is what the monthly deployment runs (flows/schedule.py) in a
process of its own, so it takes that lock itself, waiting for a run under way.

Each task says what its stage did through Prefect's run logger, dbt's lines
included (flows.progress), and is tried again only after a transient failure
(flows.retries: a DuckDB lock held by another process, say; never a rule
failure or an error about the input).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.runtime import task_run  # noqa: E402

from flows import progress, stages  # noqa: E402
from flows.retries import RETRIES, RETRY_DELAYS, retry_when_transient  # noqa: E402
from flows.writer import writer_lock  # noqa: E402
from harmonise.dbt import DbtProject  # noqa: E402
from hmo.settings import Paths  # noqa: E402


@functools.cache
def _task(stage: str, function: Callable[..., Any]) -> Any:
    def stage_task(*args: Any) -> Any:
        return progress.run_stage(stage, function, args, get_run_logger(),
                                  attempt=task_run.run_count, attempts=RETRIES + 1)

    return task(name=stage, cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
                retry_condition_fn=retry_when_transient)(stage_task)


def _as_task(stage: str, function: Callable[..., Any], *args: Any) -> Any:
    """`flows.stages.run` names each stage and its function; Prefect runs it as a task of that name."""
    return _task(stage, function)(*args)


@flow(name="hmo-run", log_prints=False)
def hmo_run(data_dir: str | None = None, full_refresh: bool = False,
            only: tuple[str, ...] = stages.STAGES) -> stages.RunSummary:
    return _pipeline(_paths(data_dir), full_refresh, only)


def _paths(data_dir: str | None) -> Paths:
    return Paths(Path(data_dir).resolve()) if data_dir else Paths.from_env()


def _pipeline(paths: Paths, full_refresh: bool = False, only: tuple[str, ...] = stages.STAGES,
              report_pdf: bool = False) -> stages.RunSummary:
    dbt = DbtProject(paths, callbacks=[progress.dbt_event])
    return stages.run(paths, dbt, full_refresh=full_refresh, stages=only, call=_as_task, report_pdf=report_pdf)


# A run under way (an operator's `hmo run` on a large backlog, the inbox watcher) is waited for this long.
MONTHLY_LOCK_WAIT = 4 * 3600.0


@flow(name="hmo-monthly", log_prints=False)
def hmo_monthly(data_dir: str | None = None) -> stages.RunSummary:
    """The monthly run: the pipeline, then the report with its PDFs, mailed to the PPT when SMTP is set."""
    paths = _paths(data_dir)
    logger = get_run_logger()
    with writer_lock(paths.writer_lock, "the monthly run (hmo serve)", wait=MONTHLY_LOCK_WAIT, on_wait=logger.info):
        summary = _pipeline(paths, report_pdf=True)
    for line in summary.lines():
        logger.info(line)
    return summary
