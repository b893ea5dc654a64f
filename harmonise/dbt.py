"""dbt, invoked in this process with one parsed manifest per run.

Parsing costs seconds; invoking `build` twice on the same manifest (once before
validation for the code lists and views the suites need, once after for the
marts) pays it once.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence, cast

from hmo.errors import HmoError
from hmo.settings import PROJECT_ROOT, Paths
from hmo.warehouse import connect

if TYPE_CHECKING:  # dbt is imported when first invoked (~4 s)
    from dbt.cli.main import dbtRunner
    from dbt.contracts.graph.manifest import Manifest
    from dbt_common.events.base_types import EventMsg

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
# The pipeline's dbt steps, named in dbt_project/selectors.yml.
BEFORE_VALIDATION = "before_validation"
MARTS = "marts"
FACTS = "facts"


# The outputs of dbt_project/profiles.yml; HMO_TARGET chooses one for `hmo build`.
DUCKDB = "duckdb"
SPARK = "spark"
TARGETS = (DUCKDB, SPARK)


class BuildFailed(HmoError):
    """A dbt model or data test failed."""


class UnknownTarget(HmoError):
    """A dbt target the project has no output for."""


@dataclass(frozen=True)
class FailedTest:
    name: str
    kind: str | None          # the generic test: not_null, relationships, accepted_values, unique
    relation: str | None      # the tested model's table, e.g. "warehouse"."marts"."fct_flows"
    column: str | None
    compiled_sql: str | None  # selects the failing values, first column first


class TestsFailed(BuildFailed):
    """Every model built, and some data tests found rows that break them."""

    def __init__(self, message: str, tests: list[FailedTest]) -> None:
        super().__init__(message)
        self.tests = tests


def _release_warehouse() -> None:
    """dbt-duckdb keeps the database open in a process-wide environment after an
    invocation; close it so that the pipeline and read-only readers can open the file."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def project_fingerprint() -> str:
    """Changes whenever a seed, model, macro or setting of the dbt project changes."""
    digest = hashlib.sha256()
    for path in sorted(DBT_PROJECT.rglob("*")):
        if path.is_file() and not {"target", "logs"} & set(path.relative_to(DBT_PROJECT).parts):
            digest.update(str(path.relative_to(DBT_PROJECT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class DbtProject:
    def __init__(self, paths: Paths, callbacks: "Sequence[Callable[[EventMsg], None]]" = (),
                 target: str = DUCKDB) -> None:
        """`callbacks` receive every event of every invocation (dbtRunner's own callbacks), e.g. to log node
        results. `target` is an output of dbt_project/profiles.yml: `duckdb` (the warehouse) or `spark`."""
        if target not in TARGETS:
            raise UnknownTarget(f"no dbt target {target!r}: the project builds on {' or '.join(TARGETS)}")
        self._warehouse = paths.warehouse
        self._data = paths.root
        self.target = target
        self._callbacks = list(callbacks)
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        # One target folder per target: a manifest parsed for one is not the other's (models enabled per adapter).
        self._target_path = paths.work / ("dbt-target" if target == DUCKDB else f"dbt-target-{target}")
        self._common = [
            "--project-dir", str(DBT_PROJECT),
            "--profiles-dir", str(DBT_PROJECT),
            "--target", target,
            "--target-path", str(self._target_path),
            "--log-path", str(paths.work / "dbt-logs"),
            "--quiet",
        ]
        self._runner: dbtRunner | None = None
        self._parsed_from: str | None = None  # the project's fingerprint when the manifest was parsed

    def _invoke(self, args: list[str]) -> object:
        # profiles.yml reads the warehouse's path from here. Set at each invocation, not once: a process
        # that stays up (`hmo serve`) builds its data directory's warehouse and the checks' scratch ones.
        os.environ["HMO_WAREHOUSE"] = str(self._warehouse)
        with self._data_dir_for_spark():
            return self._invoke_in_env(args)

    @contextlib.contextmanager
    def _data_dir_for_spark(self) -> Iterator[None]:
        """The Spark profile finds the Parquet copies through HMO_DATA_DIR; the rest of this process reads
        its own data directory from the same variable, so it is set for the invocation only."""
        if self.target != SPARK:
            yield
            return
        before = os.environ.get("HMO_DATA_DIR")
        os.environ["HMO_DATA_DIR"] = str(self._data)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("HMO_DATA_DIR", None)
            else:
                os.environ["HMO_DATA_DIR"] = before

    def _invoke_in_env(self, args: list[str]) -> object:
        from dbt.cli.main import dbtRunner

        fingerprint = project_fingerprint()
        if self._runner is None or fingerprint != self._parsed_from:  # a long-lived project sees edits too
            parsed = dbtRunner(callbacks=self._callbacks).invoke(["parse", *self._common])
            if not parsed.success:
                raise BuildFailed(f"dbt could not parse the project: {parsed.exception}")
            # A successful `dbt parse` answers with the project's Manifest.
            self._runner = dbtRunner(manifest=cast("Manifest", parsed.result), callbacks=self._callbacks)
            self._parsed_from = fingerprint
        try:
            result = self._runner.invoke([*args, *self._common])
        finally:
            if self.target == DUCKDB:
                _release_warehouse()
        if not result.success:
            failed, tests = [], []
            for node in getattr(result.result, "results", None) or []:
                if str(node.status) not in ("success", "pass", "skipped"):
                    failed.append(f"{node.node.name}: {node.status} {node.message or ''}".strip())
                    if str(node.status) == "fail" and node.node.resource_type == "test":
                        tests.append(self._failed_test(node.node))
            detail = "; ".join(failed) or str(result.exception)
            message = f"dbt {' '.join(args)} failed: {detail}"
            if failed and len(tests) == len(failed):
                raise TestsFailed(message, tests)
            # The cause says what kind of failure it was (a DuckDB lock held elsewhere is worth a retry).
            cause = result.exception if isinstance(result.exception, BaseException) else None
            raise BuildFailed(message) from cause
        return result

    def _failed_test(self, node) -> FailedTest:
        attached = getattr(node, "attached_node", None)
        # Only _invoke calls this, after its parse made the runner with the manifest.
        assert self._runner is not None and self._runner.manifest is not None
        model = self._runner.manifest.nodes.get(attached) if attached else None
        metadata = getattr(node, "test_metadata", None)
        return FailedTest(node.name, getattr(metadata, "name", None), getattr(model, "relation_name", None),
                          getattr(node, "column_name", None), getattr(node, "compiled_code", None))

    def build(self, selector: str, full_refresh: bool = False) -> None:
        """Build one selector of dbt_project/selectors.yml (which also says its indirect selection)."""
        args = ["build", "--selector", selector]
        if full_refresh:
            args.append("--full-refresh")
        self._invoke(args)

    def generate_docs(self, target: Path) -> Path:
        """dbt's documentation site of the project as one self-contained page (`docs generate --static`:
        manifest and catalog inside, so it opens from disk without a server), moved to `target`."""
        self._invoke(["docs", "generate", "--static"])
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._target_path / "static_index.html", target)
        return target

    def _built_with(self, step: str) -> str | None:
        con = connect(self._warehouse)
        try:
            row = con.execute("select fingerprint from main.hmo_build_state where step = ?", [step]).fetchone()
            return row[0] if row else None
        finally:
            con.close()

    def _record(self, step: str, fingerprint: str) -> None:
        con = connect(self._warehouse)
        try:
            con.execute("delete from main.hmo_build_state where step = ?", [step])
            con.execute("insert into main.hmo_build_state values (?, ?)", [step, fingerprint])
        finally:
            con.close()

    def prepare_validation(self, force: bool = False) -> bool:
        """Seeds and the views the suites read. They depend only on the project's
        files (views read raw rows live), so a run whose project has not changed
        since the last one skips this dbt invocation. Returns whether it ran."""
        fingerprint = project_fingerprint()
        if not force and self._built_with("validation") == fingerprint:
            return False
        self.build(BEFORE_VALIDATION)
        self._record("validation", fingerprint)
        return True

    def build_marts(self, full_refresh: bool = False) -> bool:
        """The marts. While the project is unchanged only the facts move (new
        submissions); dimensions and the unit tests of the logic are rebuilt and
        rerun only when a seed or model changed. Returns whether it was complete."""
        fingerprint = project_fingerprint()
        if not full_refresh and self._built_with("marts") == fingerprint:
            self.build(FACTS)
            return False
        self.build(MARTS, full_refresh=full_refresh)
        self._record("marts", fingerprint)
        return True

    def build_all(self, full_refresh: bool = False, exclude: Sequence[str] = ()) -> None:
        """Every seed, model and test the target enables, in one invocation (the Spark build: the
        verdicts are already in the lake, so there is no validation between two steps). `exclude`:
        dbt node selections left out (the benchmark leaves DuckDB's pub_flows out, as Spark has none)."""
        self._invoke(["build", *(["--full-refresh"] if full_refresh else []),
                      *(["--exclude", *exclude] if exclude else [])])
