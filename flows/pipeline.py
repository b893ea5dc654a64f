"""The whole pipeline as one Prefect flow: `flows.stages.run`, each stage a Prefect task."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from flows import stages  # noqa: E402
from harmonise.dbt import DbtProject  # noqa: E402
from ingest.settings import Paths  # noqa: E402


@functools.cache
def _task(stage: str, function: Callable[..., Any]) -> Any:
    return task(name=stage, cache_policy=NO_CACHE)(function)


def _as_task(stage: str, function: Callable[..., Any], *args: Any) -> Any:
    """`flows.stages.run` names each stage and its function; Prefect runs it as a task of that name."""
    return _task(stage, function)(*args)


@flow(name="hmo-run", log_prints=False)
def hmo_run(data_dir: str | None = None, full_refresh: bool = False,
            only: tuple[str, ...] = stages.STAGES) -> stages.RunSummary:
    paths = Paths(Path(data_dir).resolve()) if data_dir else Paths.from_env()
    return stages.run(paths, DbtProject(paths), full_refresh=full_refresh, stages=only, call=_as_task)
