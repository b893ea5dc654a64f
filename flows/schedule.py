"""The monthly run that writes the report to the PPT: a Prefect deployment with a cron schedule.

By default the 16th of each month at 06:00 UTC, the day after the standard's
due date (Q01); HMO_REPORT_SCHEDULE sets another cron expression (UTC). The
deployment runs the pipeline flow (`flows.pipeline.hmo_run`) on the data
directory with the report's PDFs, with a concurrency limit of one: two runs of
it never overlap, and every run takes the warehouse's writer lock besides.

`hmo serve --show` prints this deployment, its schedule and its next three
runs. Everything here is Prefect's public API: `Flow.to_deployment` with a
`prefect.schedules.Cron`, and the server's `CronSchedule` (the schedule
Prefect's scheduler itself expands), so the dates shown are the ones the
scheduler creates (tests/flows/test_schedule.py checks both against a real
Prefect server with its scheduler).
"""
from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, cast

from hmo.errors import ConfigurationError
from hmo.settings import Paths

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

SCHEDULE_ENV = "HMO_REPORT_SCHEDULE"
DEFAULT_CRON = "0 6 16 * *"
TIMEZONE = "UTC"
DEPLOYMENT = "monthly-report"


def configured_cron() -> str:
    """The schedule's cron expression, checked as Prefect's scheduler will read it."""
    from prefect.server.schemas.schedules import CronSchedule

    cron = os.environ.get(SCHEDULE_ENV, "").strip() or DEFAULT_CRON
    try:
        CronSchedule(cron=cron, timezone=TIMEZONE)
    except ValueError as exc:
        raise ConfigurationError(f"{SCHEDULE_ENV}={cron!r} is not a cron expression Prefect reads "
                                 f"(for example {DEFAULT_CRON!r}, the 16th at 06:00 UTC): "
                                 f"{str(exc).splitlines()[0]}") from None
    return cron


def next_runs(cron: str, count: int = 3, after: datetime | None = None) -> list[datetime]:
    from prefect.server.schemas.schedules import CronSchedule

    # A coroutine in Prefect 3 (the server awaits it); `hmo serve --show` runs before any event loop.
    dates = asyncio.run(CronSchedule(cron=cron, timezone=TIMEZONE).get_dates(
        n=count, start=after or datetime.now(timezone.utc)))
    return [datetime.fromtimestamp(d.timestamp(), timezone.utc) for d in dates]


def monthly_deployment(paths: Paths, cron: str | None = None) -> "RunnerDeployment":
    from prefect.schedules import Cron

    from flows.pipeline import hmo_run

    # Called outside an event loop, to_deployment answers at once (its coroutine is for async callers).
    return cast("RunnerDeployment", hmo_run.to_deployment(
        name=DEPLOYMENT,
        schedule=Cron(cron or configured_cron(), timezone=TIMEZONE),
        parameters={"data_dir": str(paths.root), "report_pdf": True},
        concurrency_limit=1,
        description="The pipeline on the data directory, then the monthly report to the PPT with its PDFs.",
    ))


def describe(paths: Paths, after: datetime | None = None) -> list[str]:
    """What `hmo serve --show` prints."""
    cron = configured_cron()
    deployment = monthly_deployment(paths, cron)
    return [
        f"deployment: {deployment.flow_name}/{deployment.name}",
        f"schedule: {cron} ({TIMEZONE}){'' if SCHEDULE_ENV in os.environ else f' (default; {SCHEDULE_ENV} sets another)'}",
        f"parameters: data_dir={paths.root}, report_pdf=True",
        "concurrency limit: 1",
        *(f"next run: {when:%Y-%m-%d %H:%M} UTC" for when in next_runs(cron, 3, after)),
    ]
