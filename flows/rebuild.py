"""`hmo rebuild`: a new warehouse from the archive and the event log alone.

Everything a figure depends on is outside the warehouse: the bytes of every
file (archive/) and when each arrived and what was finally decided about it
(events/). Replaying them in order gives the same marts; the old warehouse
is moved aside, never deleted, and compared with the new one.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from flows import stages
from harmonise.dbt import DbtProject
from hmo import events, lake
from ingest import aliases
from hmo.errors import HmoError
from ingest.profiles import load_profiles
from hmo.settings import Paths
from ingest.submissions import replay_received, sha256_of
from hmo.warehouse import connect


class RebuildFailed(HmoError):
    """The archive or the event log cannot give back what the warehouse held."""


@dataclass
class RebuildOutcome:
    replayed: int = 0
    aliases_restored: int = 0              # alias lines put back from the event log
    previous: Path | None = None            # where the replaced warehouse now lies
    verdicts_changed: list[str] = field(default_factory=list)  # recorded verdict kept, revalidation differed
    compared: dict[str, tuple[int, int]] = field(default_factory=dict)  # mart -> (rows, rows that differ)
    summary: stages.RunSummary | None = None


# Compared with the replaced warehouse after a rebuild: what analysts read.
COMPARED_MARTS = ("fct_flows", "fct_submission_periods")


def arrivals(paths: Paths) -> tuple[list[dict], dict[int, str]]:
    """The submissions to replay and their last recorded verdicts.

    A crash between a `received` event and the registry leaves an event whose
    file was received again under a new id: per (country, bytes) the last
    event is the one the warehouse kept.
    """
    latest: dict[tuple[str, str], dict] = {}
    verdicts: dict[int, str] = {}
    for event in events.read_all(paths):
        if event["kind"] == "received" and "revalidates" in event:
            # the same bytes again, on purpose: a submission of its own
            latest[("revalidation", str(event["submission_id"]))] = event
        elif event["kind"] == "received":
            latest[(event["reporting_country"], event["sha256"])] = event
        elif event["kind"] == "verdict":
            verdicts[event["submission_id"]] = event["status"]
    return sorted(latest.values(), key=lambda e: e["submission_id"]), verdicts


def rebuild(paths: Paths) -> RebuildOutcome:
    received, recorded = arrivals(paths)
    if not received and paths.warehouse.exists():
        raise RebuildFailed(f"the event log {paths.events} records no received file: nothing to rebuild from "
                            "(the warehouse is left as it is)")
    for event in received:
        _check_archived(paths, event)
    outcome = RebuildOutcome()
    # Names resolve today as the aliases recorded say, even if the files were lost.
    outcome.aliases_restored = sum(aliases.replay(paths, event) for event in events.read_all(paths)
                                   if event["kind"] == "alias_added")
    outcome.previous = _move_aside(paths)
    con = connect(paths.warehouse)
    try:
        # The ids of the log, so that receipts, events and rows keep naming the same submissions.
        next_id = max((e["submission_id"] for e in received), default=0) + 1
        con.execute(f"drop sequence raw.submission_id_seq; create sequence raw.submission_id_seq start {next_id}")
        profiles = load_profiles()
        for event in received:
            replay_received(con, paths, event, profiles)
            outcome.replayed += 1
    finally:
        con.close()
    dbt = DbtProject(paths)
    verdicts = stages.validate(paths, dbt)
    outcome.verdicts_changed = _keep_recorded_verdicts(paths, verdicts, recorded)
    outcome.summary = stages.run(paths, dbt, full_refresh=True, stages=("audit", "publish", "receipts", "report"))
    outcome.summary.verdicts = verdicts
    if outcome.summary.failure:
        raise RebuildFailed(f"the rebuilt warehouse failed its audit: {outcome.summary.failure} "
                            f"(the previous warehouse is in {outcome.previous})")
    if outcome.previous and (outcome.previous / paths.warehouse.name).exists():
        outcome.compared = _compare(paths.warehouse, outcome.previous / paths.warehouse.name)
    return outcome


def _check_archived(paths: Paths, event: dict) -> None:
    archived = paths.root / event["archive_path"]
    try:
        with archived.open("rb") as handle:
            sha, _ = sha256_of(handle)
    except OSError as exc:
        raise RebuildFailed(f"submission {event['submission_id']} ({event['file_name']}): "
                            f"its archived file cannot be read ({exc}); nothing was changed") from exc
    if sha != event["sha256"]:
        raise RebuildFailed(f"submission {event['submission_id']} ({event['file_name']}): {archived} no longer "
                            "holds the bytes received (its SHA-256 differs); nothing was changed")


def _move_aside(paths: Paths) -> Path | None:
    copies = (paths.raw_lake, paths.validation_lake)
    if not paths.warehouse.exists() and not any(copy.exists() for copy in copies):
        return None
    aside = paths.root / f"replaced-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}Z"
    aside.mkdir()
    # The Parquet copies are the old warehouse's: they go with it, and the replay writes them anew.
    for path in (paths.warehouse, paths.warehouse.with_name(paths.warehouse.name + ".wal"), *copies):
        if path.exists():
            shutil.move(str(path), aside / path.name)
    return aside


def _keep_recorded_verdicts(paths: Paths, verdicts: list[stages.Verdict], recorded: dict[int, str]) -> list[str]:
    """A verdict once given stands (it was answered): the rebuild keeps it, and says where
    revalidating today decided otherwise (a month that was in the future then, say)."""
    changed = [v for v in verdicts if v.submission_id in recorded and recorded[v.submission_id] != v.status]
    if changed:
        con = connect(paths.warehouse)
        try:
            # Appended after the suites' own: the latest verdict is the one answered.
            con.executemany(
                "insert into validation.verdicts (submission_id, status, decided_by) values (?, ?, 'rebuild')",
                [(v.submission_id, recorded[v.submission_id]) for v in changed])
            lake.write_validation(con, paths)
        finally:
            con.close()
    return [f"{v.country}/{v.file_name} [submission {v.submission_id}]: recorded {recorded[v.submission_id]}, "
            f"revalidated {v.status}" for v in changed]


def _compare(new: Path, old: Path) -> dict[str, tuple[int, int]]:
    """Rows of each mart, and how many differ from the replaced warehouse's (both ways)."""
    con = duckdb.connect(str(new), read_only=True)
    try:
        try:
            con.execute(f"attach '{old}' as previous (read_only)")
        except duckdb.Error:
            return {}
        result = {}
        for mart in COMPARED_MARTS:
            # Aggregates: each query returns one row.
            counted = con.execute(f"select count(*) from marts.{mart}").fetchone()
            assert counted is not None
            rows = counted[0]
            try:
                compared = con.execute(
                    f"""
                    select (select count(*) from (select * from marts.{mart} except all
                                                  select * from previous.marts.{mart}))
                         + (select count(*) from (select * from previous.marts.{mart} except all
                                                  select * from marts.{mart}))
                    """
                ).fetchone()
                assert compared is not None
                differ = compared[0]
            except duckdb.Error:
                differ = rows  # the old warehouse has no such mart, or another shape
            result[mart] = (rows, differ)
        return result
    finally:
        con.close()
