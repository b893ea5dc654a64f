"""The standard's suites run by Great Expectations on the pending batches."""
from __future__ import annotations

import logging
import os

import duckdb

from expectations.rules import RULES

BATCH_TABLES = {
    "submissions": "validation__pending_submissions",
    "observations": "validation__pending_observations",
}
# In the main schema: SQLAlchemy's inspector sees DuckDB schemas as
# "<catalog>.<schema>", which GX's table assets cannot name.


def run_suites(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[bool, int, list[dict]]]:
    """GX is the source of truth for pass/fail: rule id -> (success, failing rows, sample)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    for name in ["great_expectations", *logging.root.manager.loggerDict]:
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.ERROR)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from expectations.gx_duckdb import live_connection

    outcome: dict[str, tuple[bool, int, list[dict]]] = {}
    with live_connection(con) as connection_name:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        datasource = context.data_sources.add_hmo_duckdb(
            name="warehouse", connection_string=connection_name
        )
        for target, table in BATCH_TABLES.items():
            asset = datasource.add_table_asset(name=target, table_name=table)
            batch_definition = asset.add_batch_definition_whole_table(f"pending_{target}")
            suite = context.suites.add(gx.ExpectationSuite(name=f"hmo_standard_v1_{target}"))
            for rule in RULES:
                if rule.target == target:
                    suite.add_expectation(
                        gx.expectations.UnexpectedRowsExpectation(
                            unexpected_rows_query=rule.sql,
                            description=f"{rule.rule_id}: {rule.message_en}",
                            meta={"rule_id": rule.rule_id},
                        )
                    )
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"validate_{target}", data=batch_definition, suite=suite)
            )
            results = definition.run(result_format="COMPLETE")
            for result in results.results:
                # GX sets the configuration of every result of a suite it ran
                assert result.expectation_config is not None
                rule_id = result.expectation_config.meta["rule_id"]
                _raise_if_broken(rule_id, result.exception_info)
                details = result.result.get("details", {}).get("unexpected_rows", [])
                # success is None only for a result not yet run; `not success` read it as a failure
                outcome[rule_id] = (bool(result.success), result.result["observed_value"], list(details))
    return outcome


class RuleFailedToRun(RuntimeError):
    """A rule's query raised inside GX: a bug in the rule, never a verdict."""


def _raise_if_broken(rule_id: str, exception_info: dict | None) -> None:
    # GX reports one entry, or one per metric keyed by metric id.
    entries = [exception_info] if exception_info and "raised_exception" in exception_info else list(
        (exception_info or {}).values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            raise RuleFailedToRun(f"rule {rule_id} could not run: {entry.get('exception_message')}")
