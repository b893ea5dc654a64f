"""The monthly run that writes the report to the PPT: a Prefect deployment with a cron schedule.

By default the 16th of each month at 06:00 UTC, the day after the standard's
due date (Q01); HMO_REPORT_SCHEDULE sets another cron expression (UTC). The
deployment runs `flows.pipeline.hmo_monthly` on the data directory: the
pipeline, then the report with its PDFs (mailed when SMTP is set). It has a
concurrency limit of one, so two runs of it never overlap, and each run takes
the warehouse's writer lock besides (waiting for a run under way), as `hmo run`
and the inbox watcher do.

`hmo serve` serves it (`serving`): Prefect's `Runner` in a thread of the
service, against the service's own Prefect server, whose scheduler creates the
runs; the runner starts each in a process of its own, as Prefect always does.
`hmo serve --show` prints this deployment, its schedule and its next three
runs. Everything here is Prefect's public API: `Flow.to_deployment` with a
`prefect.schedules.Cron`, `prefect.runner.Runner`, and the server's
`CronSchedule` (the schedule Prefect's scheduler itself expands), so the dates
shown are the ones the scheduler creates (tests/flows/test_schedule.py checks
both against a real Prefect server with its scheduler).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator, cast

from hmo.errors import ConfigurationError, HmoError
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
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.pipeline import hmo_monthly

    # Called outside an event loop, to_deployment answers at once (its coroutine is for async callers).
    return cast("RunnerDeployment", hmo_monthly.to_deployment(
        name=DEPLOYMENT,
        schedule=Cron(cron or configured_cron(), timezone=TIMEZONE),
        parameters={"data_dir": str(paths.root)},
        concurrency_limit=1,
        # The installed module, not a file path relative to where `hmo serve` was started.
        entrypoint_type=EntrypointType.MODULE_PATH,
        description="The pipeline on the data directory, then the monthly report to the PPT with its PDFs.",
    ))


class ScheduleFailed(HmoError):
    """The service could not register or serve the monthly deployment."""


STOP_SECONDS = 30.0


@contextlib.contextmanager
def serving(paths: Paths, api_url: str, say: Callable[[str], None]) -> Iterator[str]:
    """The monthly deployment served from a thread while inside: registered with the Prefect API at
    `api_url` (its scheduler creates the runs), each run started by Prefect's Runner in a new process.
    Yields the deployment's id. On the way out the runner stops, and a run under way is cancelled."""
    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL, temporary_settings

    cron = configured_cron()
    deployment = monthly_deployment(paths, cron)
    # Runs the service missed while it was down are still run when it is back (late), so the schedule stays on.
    runner = Runner(name=f"hmo-serve-{os.getpid()}", limit=1, pause_on_shutdown=False)
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        state["loop"] = asyncio.get_running_loop()
        state["id"] = str(await runner.aadd_deployment(deployment))
        started.set()
        await runner.start()

    def thread() -> None:
        # Settings are per thread (a context variable): this one talks to the service's server too.
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            try:
                asyncio.run(main())
            except BaseException as exc:  # noqa: BLE001 - said by the service, which goes on checking files
                state["error"] = exc
            finally:
                started.set()

    worker = threading.Thread(target=thread, name="hmo-monthly-runner", daemon=True)
    worker.start()
    started.wait()
    if "error" in state:
        raise ScheduleFailed(f"the monthly deployment could not be served: {state['error']}")
    say(f"hmo serve: {deployment.flow_name}/{deployment.name} served, on {cron} ({TIMEZONE}); "
        f"next run {next_runs(cron, 1)[0]:%Y-%m-%d %H:%M} UTC")
    try:
        yield state["id"]
    finally:
        if worker.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(runner.astop(), state["loop"]).result(STOP_SECONDS)
            worker.join(STOP_SECONDS)
        if "error" in state:
            say(f"hmo serve: the monthly runner stopped: {state['error']}")


def describe(paths: Paths, after: datetime | None = None) -> list[str]:
    """What `hmo serve --show` prints."""
    cron = configured_cron()
    deployment = monthly_deployment(paths, cron)
    return [
        f"deployment: {deployment.flow_name}/{deployment.name}",
        f"schedule: {cron} ({TIMEZONE}){'' if SCHEDULE_ENV in os.environ else f' (default; {SCHEDULE_ENV} sets another)'}",
        f"flow: {deployment.entrypoint} (the pipeline, then the report with its PDFs)",
        f"parameters: data_dir={paths.root}",
        "concurrency limit: 1",
        *(f"next run: {when:%Y-%m-%d %H:%M} UTC" for when in next_runs(cron, 3, after)),
    ]
