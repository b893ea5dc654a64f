"""Run the standard's suites on pending submissions and record each verdict."""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]  # ships no type information

from expectations.rules import SLICE_KEY_EXACT, SLICE_KEY_HASHED
from expectations.suites import BATCH_TABLES, RuleOutcome, run_suites

@dataclass
class Verdict:
    submission_id: int
    country: str
    file_name: str
    status: str  # accepted | rejected
    errors: int = 0
    warnings: int = 0
    rules_failed: list[str] = field(default_factory=list)


def prepare_batches(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Materialise the pending rows once, so each rule scans them and not the history."""
    # Pending: loaded whole, and no verdict yet.
    con.execute(
        """
        create or replace view validation__pending_submissions as
        select * from raw.submissions as s
        where load_state = 'received'
          and not exists (select 1 from validation.verdicts as v where v.submission_id = s.submission_id)
        """
    )
    pending = [row[0] for row in con.execute(
        "select submission_id from validation__pending_submissions order by 1"
    ).fetchall()]
    # A source value is kept only where it did not resolve: that is all the
    # rules report, and mostly-empty columns cost nothing to write.
    kept = ", ".join(
        f"{code}, case when {code} is null then {code}_value end as {code}_value"
        for code in ("reporting_country", "period", "flow_type", "counterpart_country",
                     "sex", "age", "nationality", "count", "obs_status")
    )
    con.execute(
        f"""
        create or replace table validation__pending_observations as
        select submission_id, source_row, inbox_country, border_point, {kept},
               nationality_ambiguous, counterpart_country_ambiguous,
               {SLICE_KEY_HASHED} as slice_key
        from marts.fct_submitted_observations
        where submission_id in ({_id_list(pending)})
        """
    )
    settle_slice_keys(con)
    return pending


def settle_slice_keys(con: duckdb.DuckDBPyConnection, table: str = BATCH_TABLES["observations"]) -> bool:
    """Keep the hashed slice keys unless two slices share one; then key by the slice itself.

    Returns whether the exact key was needed. Sharing a 64-bit hash is
    improbable (about 1e-12 for thousands of slices) but would merge two
    slices in C01, C02 and R04, so it is checked: one aggregate over few groups.
    """
    counted = con.execute(
        f"select count(distinct slice_key) < count(distinct {SLICE_KEY_EXACT}) from {table}"
    ).fetchone()
    assert counted is not None  # an aggregate always returns a row
    shared = counted[0]
    if shared:
        con.execute(
            f"create or replace table {table} as select * replace ({SLICE_KEY_EXACT} as slice_key) from {table}"
        )
    return bool(shared)


def _record_failures(con: duckdb.DuckDBPyConnection, outcome: RuleOutcome) -> None:
    """Every failing row GX returned, in one insert from an Arrow table (a file can fail a million rows)."""
    if not outcome.rows:
        return
    failures = pa.Table.from_pylist(outcome.rows)
    con.register("hmo_rule_failures", failures)
    try:
        con.execute(
            """
            insert into validation.rule_failures
            select submission_id, ?, ?, source_row, column_name, value::varchar, detail::varchar
            from hmo_rule_failures
            """,
            [outcome.rule_id, outcome.severity],
        )
    finally:
        con.unregister("hmo_rule_failures")


def validate_pending(con: duckdb.DuckDBPyConnection) -> list[Verdict]:
    try:
        return _validate(con, prepare_batches(con))
    finally:
        # The batch is a copy of what arrived (10M rows: ~0.5 GB on disk); the
        # verdicts and failures are what stays.
        con.execute(f"drop table if exists {BATCH_TABLES['observations']}")
        con.execute(f"drop view if exists {BATCH_TABLES['submissions']}")


def _validate(con: duckdb.DuckDBPyConnection, pending: list[int]) -> list[Verdict]:
    if not pending:
        return []
    outcomes = run_suites(con)
    # Failures and verdicts land together or not at all: a crash in between
    # leaves the submissions pending, to be validated again from scratch.
    con.execute("begin transaction")
    try:
        for outcome in outcomes:
            _record_failures(con, outcome)
        # What ingest found while reading the file is a failure like any other.
        con.execute(
            f"""
            insert into validation.rule_failures
            select * from raw.load_failures where submission_id in ({_id_list(pending)})
            """
        )
        con.execute(
            f"""
            insert into validation.verdicts (submission_id, status, decided_by)
            select submission_id,
                   case when exists (
                       select 1 from validation.rule_failures as f
                       where f.submission_id = p.submission_id and f.severity = 'error')
                   then 'rejected' else 'accepted' end,
                   'suites'
            from validation__pending_submissions as p
            where submission_id in ({_id_list(pending)})
            order by submission_id
            """
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return verdicts(con, pending)


def verdicts(con: duckdb.DuckDBPyConnection, submission_ids: list[int]) -> list[Verdict]:
    rows = con.execute(
        """
        select submission_id, reporting_country, file_name, status, errors, warnings, rules_failed
        from marts.fct_submissions
        where list_contains(?, submission_id)
        order by submission_id
        """,
        [submission_ids],
    ).fetchall()
    return [Verdict(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or []) for r in rows]


def _id_list(ids: list[int]) -> str:
    """Literal ids, not a join: DuckDB pushes them through the views to the raw scan."""
    return ", ".join(str(int(i)) for i in ids) or "null"
