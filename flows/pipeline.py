"""The whole pipeline as one Prefect flow, one task per stage."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from flows import stages  # noqa: E402
from harmonise.dbt import DbtProject  # noqa: E402
from ingest.settings import Paths  # noqa: E402

ingest_task = task(stages.ingest, name="ingest", cache_policy=NO_CACHE)
validate_task = task(stages.validate, name="validate", cache_policy=NO_CACHE)
answer_task = task(stages.answer, name="receipts", cache_policy=NO_CACHE)
build_task = task(stages.build, name="build-marts", cache_policy=NO_CACHE)
report_task = task(stages.report, name="report", cache_policy=NO_CACHE)


@flow(name="hmo-run", log_prints=False)
def hmo_run(data_dir: str | None = None, full_refresh: bool = False) -> stages.RunSummary:
    paths = Paths(Path(data_dir).resolve()) if data_dir else Paths.from_env()
    dbt = DbtProject(paths)
    summary = stages.RunSummary()
    summary.ingested = ingest_task(paths)
    summary.verdicts = validate_task(paths, dbt)
    summary.receipts = answer_task(paths, summary.ingested, summary.verdicts)
    build_task(paths, dbt, full_refresh)
    summary.report = report_task(paths)
    return summary
