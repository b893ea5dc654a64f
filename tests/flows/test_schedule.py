"""The monthly run's deployment and schedule (flows/schedule.py): `hmo serve --show`, and a real
Prefect server's scheduler creating exactly the runs it shows."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from flows import schedule
from flows.cli import main
from flows.server import prefect_api


def _sixteenths(after: datetime, count: int) -> list[datetime]:
    found, year, month = [], after.year, after.month
    while len(found) < count:
        when = datetime(year, month, 16, 6, 0, tzinfo=timezone.utc)
        if when > after:
            found.append(when)
        year, month = year + month // 12, month % 12 + 1
    return found


def test_show_prints_the_deployment_its_schedule_and_its_next_three_runs(paths, capsys, monkeypatch):
    monkeypatch.delenv(schedule.SCHEDULE_ENV, raising=False)
    before = datetime.now(timezone.utc)
    assert main(["serve", "--show"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:5] == ["deployment: hmo-monthly/monthly-report",
                       f"schedule: 0 6 16 * * (UTC) (default; {schedule.SCHEDULE_ENV} sets another)",
                       "flow: flows.pipeline.hmo_monthly (the pipeline, then the report with its PDFs)",
                       f"parameters: data_dir={paths.root}",
                       "concurrency limit: 1"]
    assert out[5:] == [f"next run: {when:%Y-%m-%d %H:%M} UTC" for when in _sixteenths(before, 3)]


def test_a_schedule_that_is_not_cron_is_one_clear_error(paths, capsys, monkeypatch):
    monkeypatch.setenv(schedule.SCHEDULE_ENV, "every month")
    assert main(["serve", "--show"]) != 0
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("hmo: HMO_REPORT_SCHEDULE='every month' is not a cron expression")
    assert len(err.splitlines()) == 1


def test_prefects_scheduler_creates_the_runs_show_prints_with_their_concurrency_limit(paths, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS", "1")  # Prefect's default: 60
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    cron = "0 6 16 * *"
    expected = schedule.next_runs(cron, 3)
    # A server of the test's own, with its scheduler: not the suite's (which may be set in this process).
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with prefect_api(tmp_path / "server.log", resident=True) as api:
            assert api.temporary
            deployment_id = schedule.monthly_deployment(paths, cron).apply()
            with get_client(sync_client=True) as client:
                deadline = time.monotonic() + 60
                while True:
                    runs = client.read_flow_runs(
                        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
                    if len(runs) >= 3 or time.monotonic() > deadline:
                        break
                    time.sleep(1)
                deployed = client.read_deployment(deployment_id)
    starts = sorted(datetime.fromtimestamp(run.expected_start_time.timestamp(), timezone.utc) for run in runs)
    assert starts[:3] == expected, (tmp_path / "server.log").read_text(errors="replace")[-2000:]
    assert {run.state_name for run in runs} == {"Scheduled"}
    # Prefect 3 keeps a deployment's limit as a global concurrency limit of its own.
    assert deployed.global_concurrency_limit is not None and deployed.global_concurrency_limit.limit == 1
    assert deployed.parameters == {"data_dir": str(paths.root)}
    assert deployed.entrypoint == "flows.pipeline.hmo_monthly"  # found from anywhere: the installed module


@pytest.mark.parametrize("cron", ["0 6 16 * *", "30 5 1 */3 *"])
def test_next_runs_are_the_cron_expressions_own(cron):
    after = datetime(2026, 12, 2, tzinfo=timezone.utc)
    runs = schedule.next_runs(cron, 3, after)
    if cron == "0 6 16 * *":
        assert runs == _sixteenths(after, 3)
    else:
        assert runs == [datetime(2027, 1, 1, 5, 30, tzinfo=timezone.utc), datetime(2027, 4, 1, 5, 30, tzinfo=timezone.utc),
                        datetime(2027, 7, 1, 5, 30, tzinfo=timezone.utc)]
