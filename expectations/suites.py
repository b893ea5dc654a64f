"""The standard's suites run by Great Expectations on the pending batches, one country at a time.

The suites, validation definitions and checkpoints are files of the GX
project in expectations/gx/ (see its great_expectations.yml). `run_suites`
runs the checkpoint once per reporting country of the pending batch, in a
context of its own whose country site and results store are that country's
(`runtime_environment`), so the checkpoint's action writes the country's
Data Docs and the staff's, and nobody else's. GX decides pass or fail; the
rows that failed come from GX too: `ValidationDefinition.get_unexpected_rows()`
for a rule in SQL (no 200-row cap; the engine in gx_duckdb.py answers it from
the rows the count already produced), the result's index list for a built-in.

This module imports GX only when it runs: receipts and the report read
`data_docs_index` without paying for it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import duckdb

from expectations.rules import RULES, SEVERITIES
from hmo.settings import Paths

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.core.validation_definition import ValidationDefinition

BATCH_TABLES = {
    "submissions": "validation__pending_submissions",
    "observations": "validation__pending_observations",
}
# In the main schema: SQLAlchemy's inspector sees DuckDB schemas as
# "<catalog>.<schema>", which GX's table assets cannot name. The GX project
# names the same tables (tests/expectations/test_suites.py checks it).

GX_PROJECT = Path(__file__).resolve().parent  # GX's project_root_dir: the project is in GX_PROJECT/gx
CHECKPOINT = "standard"
# A country none of whose pending files has rows (all unreadable, say) has no
# row batch for GX's partitioner to find: only the file suite runs.
CHECKPOINT_FILES_ONLY = "standard_files_only"
BATCH_PARAMETER = "inbox_country"
STAFF = "staff"
FAILURE_COLUMNS = ("submission_id", "source_row", "column_name", "value", "detail")


@dataclass
class RuleOutcome:
    """One rule over the whole run: passed everywhere, or every row that failed it."""
    rule_id: str
    severity: str  # error | warning
    success: bool
    rows: list[dict] = field(default_factory=list)  # keys: FAILURE_COLUMNS


class RuleFailedToRun(RuntimeError):
    """A rule's query raised inside GX, or GX returned fewer failing rows than it counted: a bug, never a verdict."""


def site_directory(data_docs: Path, country: str | None) -> Path:
    """A country's Data Docs site, or the staff's (None): what that site's readers may open."""
    return data_docs / "sites" / (STAFF if country is None else _checked_country(country))


def data_docs_index(paths: Paths, country: str | None) -> Path:
    """The index page of `country`'s Data Docs (None: the staff site, every country). It may not exist yet."""
    return site_directory(paths.data_docs, country) / "index.html"


def run_suites(con: duckdb.DuckDBPyConnection, data_docs: Path | None = None,
               project: Path = GX_PROJECT) -> list[RuleOutcome]:
    """Every rule of the suites on the pending batches, in the order of RULES.

    `data_docs`: where the sites and their results go; by default the data
    directory of the connection's warehouse (`Paths.data_docs`), or a
    temporary folder, removed after, for a database outside one.
    `project`: the GX project's root (a copy, in tests).
    """
    countries = [row[0] for row in con.execute(
        f"select distinct reporting_country from {BATCH_TABLES['submissions']} order by 1").fetchall()]
    outcomes: dict[str, RuleOutcome] = {}
    run_time = dt.datetime.now(dt.timezone.utc)
    with _data_docs_root(con, data_docs) as root:
        for country in countries:
            for outcome in _run_country(con, project, root, country, run_time):
                merged = outcomes.setdefault(outcome.rule_id, RuleOutcome(outcome.rule_id, outcome.severity, True))
                merged.success = merged.success and outcome.success
                merged.rows += outcome.rows
    order = {rule.rule_id: i for i, rule in enumerate(RULES)}
    return sorted(outcomes.values(), key=lambda o: (order.get(o.rule_id, len(order)), o.rule_id))


def _run_country(con: duckdb.DuckDBPyConnection, project: Path, data_docs: Path, country: str,
                 run_time: dt.datetime) -> Iterator[RuleOutcome]:
    gx = import_gx()
    from great_expectations.core.run_identifier import RunIdentifier

    from expectations.gx_duckdb import live_connection

    has_rows = con.execute(
        f"select exists (select 1 from {BATCH_TABLES['observations']} where {BATCH_PARAMETER} = ?)", [country]
    ).fetchone()
    batch_parameters = {BATCH_PARAMETER: country}
    with live_connection(con) as connection_name:
        context = gx.get_context(mode="file", project_root_dir=str(project), runtime_environment={
            "hmo_connection": connection_name,
            "hmo_country_results": str(data_docs / "validations" / _checked_country(country)),
            "hmo_staff_results": str(data_docs / "validations" / STAFF),
            "hmo_country_site": str(site_directory(data_docs, country)),
            "hmo_staff_site": str(site_directory(data_docs, None)),
        })
        checkpoint = context.checkpoints.get(CHECKPOINT if has_rows and has_rows[0] else CHECKPOINT_FILES_ONLY)
        result = checkpoint.run(batch_parameters=batch_parameters,
                                run_id=RunIdentifier(run_name=country, run_time=run_time))
        definitions = {definition.suite.name: definition for definition in checkpoint.validation_definitions}
        for suite_result in result.run_results.values():
            definition = definitions[suite_result.suite_name]
            for expectation_result in suite_result.results:
                yield _outcome(definition, expectation_result, batch_parameters)


def _outcome(definition: ValidationDefinition, result: ExpectationValidationResult,
             batch_parameters: dict[str, str]) -> RuleOutcome:
    config = result.expectation_config
    assert config is not None  # GX sets the configuration of every result of a suite it ran
    meta = config.meta or {}
    rule_id = meta["rule_id"]
    _raise_if_broken(rule_id, result.exception_info)
    # success is None only for a result not yet run; `not success` would read it as a failure
    success = bool(result.success)
    rows = [] if success else _failing_rows(definition, rule_id, config.id, meta, result, batch_parameters)
    return RuleOutcome(rule_id, SEVERITIES[str(config.severity.value)], success, rows)


def _failing_rows(definition: ValidationDefinition, rule_id: str, expectation_id: str | None, meta: dict,
                  result: ExpectationValidationResult, batch_parameters: dict[str, str]) -> list[dict]:
    from great_expectations.expectations import UnexpectedRowsExpectation

    [expectation] = [e for e in definition.suite.expectations if e.id == expectation_id]
    found = result.result
    if isinstance(expectation, UnexpectedRowsExpectation):
        # The checkpoint asks for a SUMMARY: the stored results (and the Data Docs
        # index that reads them) stay small, and GX's 200-row sample would not
        # do anyway. The rows come from the query the count already materialised.
        total = found["observed_value"]
        with _no_progress_bars():
            rows = definition.get_unexpected_rows(expectation, batch_parameters=batch_parameters)
    else:
        # A column-map expectation: the checkpoint's result format asks for every
        # failing row's submission_id (partial_unexpected_count past any batch:
        # the index list is not capped at 200 on SQL, unlike the values);
        # meta.failing_row fixes the fields the column's value does not give.
        total = found["unexpected_count"]
        column = getattr(expectation, "column")
        fixed = meta.get("failing_row", {})
        entries = found.get("unexpected_index_list") or found.get("partial_unexpected_index_list") or []
        rows = [{"value": entry.get(column), **entry, **fixed} for entry in entries]
    if len(rows) != total:
        raise RuleFailedToRun(f"rule {rule_id}: GX counted {total} failing rows and returned {len(rows)}")
    if rows and tuple(rows[0]) == FAILURE_COLUMNS:  # a rule's query selects them, in order (a million rows, at times)
        return rows
    return [{column: row.get(column) for column in FAILURE_COLUMNS} for row in rows]


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    # GX 1.24's Batch.compute_metrics (under get_unexpected_rows) draws tqdm
    # bars on stderr whatever the project's progress_bars say.
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _raise_if_broken(rule_id: str, exception_info: dict | None) -> None:
    # GX reports one entry, or one per metric keyed by metric id.
    entries = [exception_info] if exception_info and "raised_exception" in exception_info else list(
        (exception_info or {}).values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            raise RuleFailedToRun(f"rule {rule_id} could not run: {entry.get('exception_message')}")


@contextlib.contextmanager
def _data_docs_root(con: duckdb.DuckDBPyConnection, data_docs: Path | None) -> Iterator[Path]:
    if data_docs is not None:
        yield data_docs
        return
    found = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()
    if found and found[0]:
        paths = Paths(Path(found[0]).resolve().parent)
        if paths.warehouse == Path(found[0]).resolve():
            yield paths.data_docs
            return
    with tempfile.TemporaryDirectory(prefix="hmo-data-docs-") as scratch:
        yield Path(scratch)


def _checked_country(country: str) -> str:
    # It names folders: only what an inbox folder of a member can be named.
    if not re.fullmatch(r"[A-Z]{3}", country):
        raise ValueError(f"not an ISO3 country code: {country!r}")
    return country


def import_gx() -> Any:
    """great_expectations, quiet, with the types our project files name registered."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    for name in ["great_expectations", *logging.root.manager.loggerDict]:
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.ERROR)
    # The project's files name our datasource type and checkpoint action: both must be registered first.
    import expectations.gx_docs  # noqa: F401
    import expectations.gx_duckdb  # noqa: F401
    return gx
