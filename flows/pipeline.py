"""The whole pipeline as one Prefect flow: `flows.stages.run`, each stage a Prefect task."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from flows import stages  # noqa: E402
from harmonise.dbt import DbtProject  # noqa: E402
from ingest.settings import Paths  # noqa: E402

_TASKS = {
    name: task(getattr(stages, function), name=name, cache_policy=NO_CACHE)
    for name, function in {"ingest": "ingest", "validate": "validate", "audit": "audit",
                           "publish": "publish", "receipts": "answer", "report": "report"}.items()
}


def _as_task(stage: str, function: Callable[..., Any], *args: Any) -> Any:
    return _TASKS[stage](*args)


@flow(name="hmo-run", log_prints=False)
def hmo_run(data_dir: str | None = None, full_refresh: bool = False,
            only: tuple[str, ...] = stages.STAGES) -> stages.RunSummary:
    paths = Paths(Path(data_dir).resolve()) if data_dir else Paths.from_env()
    return stages.run(paths, DbtProject(paths), full_refresh=full_refresh, stages=only, call=_as_task)
