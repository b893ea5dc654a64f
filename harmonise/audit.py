"""Write, audit, publish: the marts are built and tested before anybody reads them.

Readers only ever open the published copy (hmo.warehouse.publish), so the
marts in the warehouse are the audit area. The suites should stop every bad
row; the marts' dbt tests are the last line. When a test fails, the
submissions whose rows break it are rejected (rule A01, with the rows), the
marts are rebuilt without them, and only a build whose tests pass is marked
audited and published. A failure nobody's rows explain (a fault of the
project, not of a file) keeps the last good publication and stops the run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from harmonise.dbt import BuildFailed, DbtProject, FailedTest, TestsFailed, project_fingerprint
from hmo import events, lake
from hmo.settings import Paths
from hmo.warehouse import connect

@dataclass
class AuditOutcome:
    rejected: dict[int, list[str]] = field(default_factory=dict)  # submission -> tests its rows failed
    audited_through: int = 0


def audit(paths: Paths, dbt: DbtProject, full_refresh: bool = False) -> AuditOutcome:
    outcome = AuditOutcome()
    try:
        if dbt.build_marts(full_refresh=full_refresh):
            events.record(paths, "marts_rebuilt", fingerprint=project_fingerprint(), full_refresh=full_refresh)
    except TestsFailed as failed:
        blamed = _reject_blamed(paths, failed.tests)
        if not blamed:
            raise BuildFailed(
                f"{failed} — this is not explained by the rows of a new submission, so nothing was "
                "published (the last publication stays); fix the cause, then run `hmo run --full-refresh`"
            ) from failed
        outcome.rejected = blamed
        # An incremental build cannot take rows back out (they replaced the
        # slice's earlier version): rebuild the marts from the accepted rows.
        dbt.build_marts(full_refresh=True)
    outcome.audited_through = _mark_audited(paths)
    return outcome


def _blame_sql(test: FailedTest) -> str | None:
    """Rows of the tested model whose value of the tested column the test returned as failing."""
    if not (test.relation and test.column and test.compiled_sql and _first_column(test)):
        return None
    return f"""
        select m.submission_id, m.source_row, m.{test.column}::varchar as value
        from {test.relation} as m
        where exists (
            select 1 from ({test.compiled_sql}) as failing
            where m.{test.column} is not distinct from failing.{_first_column(test)}
        )"""


def _first_column(test: FailedTest) -> str | None:
    # dbt's generic tests select the failing value first: the column itself
    # (not_null), from_field (relationships), value_field (accepted_values),
    # unique_field (unique).
    return {"not_null": test.column, "relationships": "from_field", "accepted_values": "value_field",
            "unique": "unique_field"}.get(test.kind or "")


def _reject_blamed(paths: Paths, tests: list[FailedTest]) -> dict[int, list[str]]:
    """Reject the submissions whose rows fail the tests, if they explain every failure.

    Only submissions not yet audited can be blamed: a failing row of a
    published submission means the project, not a file, is at fault (a broken
    dimension, say), and then nobody is blamed and nothing is published.
    """
    con = connect(paths.warehouse)
    try:
        # Aggregates and inserts: each query returns one row (an insert's is its count).
        through = con.execute("select coalesce(max(audited_through), 0) from main.hmo_audit").fetchone()
        assert through is not None
        audited = through[0]
        con.execute("create or replace temp table hmo_blamed "
                    "(submission_id integer, source_row bigint, column_name varchar, value varchar, test varchar)")
        for test in tests:
            sql = _blame_sql(test)
            if sql is None or not _has_columns(con, test.relation, ("submission_id", "source_row")):
                return {}
            inserted = con.execute(
                f"insert into hmo_blamed select submission_id, source_row, ?, value, ? from ({sql})",
                [test.column, test.name],
            ).fetchone()
            assert inserted is not None
            if not inserted[0]:
                return {}
        published = con.execute("select count(*) from hmo_blamed where submission_id <= ?", [audited]).fetchone()
        assert published is not None
        if published[0]:
            return {}
        blamed: dict[int, list[str]] = {}
        for submission_id, test in con.execute(
            "select distinct submission_id, test from hmo_blamed order by all"
        ).fetchall():
            blamed.setdefault(submission_id, []).append(test)
        con.execute("begin transaction")
        try:
            con.execute(
                """
                insert into validation.rule_failures
                select submission_id, 'A01', 'error', source_row, column_name, value, 'dbt test ' || test
                from hmo_blamed
                """
            )
            con.execute(
                "insert into validation.verdicts (submission_id, status, decided_by) "
                "select unnest(?), 'rejected', 'audit'",
                [sorted(blamed)],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return blamed
    finally:
        con.close()


def _has_columns(con: duckdb.DuckDBPyConnection, relation: str | None, columns: tuple[str, ...]) -> bool:
    """Whether a tested model's rows can be traced to a file's rows (pub_flows' cannot: a failure there is
    the publication's fault, never a file's)."""
    if not relation:
        return False
    try:
        present = [d[0] for d in con.execute(f"select * from {relation} limit 0").description]
    except duckdb.Error:
        return False
    return all(column in present for column in columns)


def _mark_audited(paths: Paths) -> int:
    """Every verdict up to here is final: the receipts of these submissions may go out."""
    con = connect(paths.warehouse)
    try:
        decided = con.execute(
            "select coalesce(max(submission_id), 0) from validation.verdicts"
        ).fetchone()
        assert decided is not None  # an aggregate always returns a row
        through = decided[0]
        con.execute("delete from main.hmo_audit")
        con.execute("insert into main.hmo_audit values (?, current_timestamp)", [through])
        lake.write_validation(con, paths)  # the final verdicts, for the marts' build on Spark
        return through
    finally:
        con.close()
