"""GX on the pipeline's own DuckDB connection (the fix for GX issue #10738)."""
from __future__ import annotations

import duckdb
import great_expectations as gx

from expectations.gx_duckdb import live_connection


def validate(con, *expectations):
    with live_connection(con) as name:
        context = gx.get_context(mode="ephemeral")
        datasource = context.data_sources.add_hmo_duckdb(name="w", connection_string=name)
        batch = datasource.add_table_asset(name="t", table_name="t").add_batch_definition_whole_table("all")
        suite = context.suites.add(gx.ExpectationSuite(name="s"))
        for expectation in expectations:
            suite.add_expectation(expectation)
        return context.validation_definitions.add(
            gx.ValidationDefinition(name="v", data=batch, suite=suite)).run(result_format="COMPLETE").results


def test_unexpected_rows_run_inside_duckdb_and_release_the_file(tmp_path):
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table t as select range as id, case when range % 100 = 0 then -1 else 1 end as v "
                "from range(1000)")
    unexpected, between = validate(
        con,
        gx.expectations.UnexpectedRowsExpectation(unexpected_rows_query="select id from {batch} where v < 0"),
        gx.expectations.ExpectColumnValuesToBeBetween(column="id", min_value=0),
    )
    assert unexpected.success is False
    assert unexpected.result["observed_value"] == 10
    assert sorted(r["id"] for r in unexpected.result["details"]["unexpected_rows"]) == list(range(0, 1000, 100))
    assert between.success is True
    # The caller's connection still works, and closing it frees the file.
    assert con.execute("select count(*) from t").fetchone() == (1000,)
    con.close()
    duckdb.connect(str(path), read_only=True).close()


def test_each_unexpected_rows_query_runs_once_for_count_and_sample(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create table t as select range as id from range(50)")
    con.execute("create sequence executions")
    # nextval() counts how many rows the query produced, over all its executions.
    [result] = validate(con, gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query="select id, nextval('executions') as n from {batch} where id < 5"))
    assert result.result["observed_value"] == 5
    assert len(result.result["details"]["unexpected_rows"]) == 5
    assert con.execute("select nextval('executions')").fetchone() == (6,)


def test_the_batch_is_read_where_it_is_not_copied(tmp_path):
    import sqlalchemy as sa

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create table t as select range as id from range(50)")
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        [result] = validate(con, gx.expectations.UnexpectedRowsExpectation(
            unexpected_rows_query="select id from {batch} where id < 5"))
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    assert result.result["observed_value"] == 5
    assert statements and not [s for s in statements if "temporary table" in s.lower()]


def test_all_failing_rows_of_one_partition_come_from_the_rows_the_count_produced(tmp_path):
    """As the pipeline runs it: the connection named through runtime_environment, one country's batch,
    and the rows past GX's 200-row sample fetched with get_unexpected_rows, without running the query again."""
    from great_expectations.core.partitioners import PartitionerColumnValue

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create table t as select range as id, case when range % 2 = 0 then 'PAN' else 'CRI' end as country "
                "from range(1000)")
    con.execute("create sequence executions")
    with live_connection(con) as name:
        context = gx.get_context(mode="ephemeral", runtime_environment={"connection": name})
        datasource = context.data_sources.add_hmo_duckdb(name="w", connection_string="${connection}")
        batch = datasource.add_table_asset(name="t", table_name="t").add_batch_definition(
            "by_country", partitioner=PartitionerColumnValue(column_name="country"), validate_partitioner=False)
        suite = context.suites.add(gx.ExpectationSuite(name="s"))
        expectation = suite.add_expectation(gx.expectations.UnexpectedRowsExpectation(
            unexpected_rows_query="select id, country, nextval('executions') as n from {batch} where id < 600"))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name="v", data=batch, suite=suite))
        [result] = definition.run(batch_parameters={"country": "PAN"}, result_format="COMPLETE").results
        assert result.result["observed_value"] == 300
        assert len(result.result["details"]["unexpected_rows"]) == 200
        rows = definition.get_unexpected_rows(expectation, batch_parameters={"country": "PAN"})
    assert sorted(r["id"] for r in rows) == list(range(0, 600, 2))
    assert {r["country"] for r in rows} == {"PAN"}
    assert con.execute("select nextval('executions')").fetchone() == (301,)


def test_gx_still_drops_duckdb_connections_between_metrics():
    """Pinned GX (pyproject: great-expectations==1.24.1) keeps connections only for these dialects.
    If DuckDB joins them, GX keeps the connection itself: drop our get_connection override."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    assert "duckdb" not in {dialect.value for dialect in engine._PERSISTED_CONNECTION_DIALECTS}
    assert gx.__version__ == "1.24.1"
