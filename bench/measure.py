"""The measured side of the benchmark: one stage, run in a fresh process.

`bench.run` starts `python -m bench.measure <stage> <json kwargs> <result.json>`
once per measurement, so that each stage pays its own imports, starts with a
cold DuckDB buffer pool and has its own peak RSS (the parent reads it with
wait4).  A stage writes its timings as JSON to <result.json>; `seconds` is the
measured figure (the work only, interpreter start-up excluded) and `parts`
splits it.  The split is obtained by wrapping the pipeline's own functions at
run time (nothing in the pipeline is changed); a function that has been
renamed is simply not split out.

With `"profile": "<path>"` in the kwargs the stage also runs under
pyinstrument (if installed) and writes its text report to <path>.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

from hmo.warehouse import memory_limit

for _name, _value in (
    ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
    ("DO_NOT_TRACK", "1"),
    ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
    ("GX_ANALYTICS_ENABLED", "false"),
):
    os.environ.setdefault(_name, _value)


class Timer:
    """Accumulates wall time per label (a label may be hit more than once)."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, label: str) -> Iterator[None]:
        self.parts.setdefault(label, 0.0)  # the order of the parts is the order they start in
        start = time.perf_counter()
        try:
            yield
        finally:
            self.parts[label] += time.perf_counter() - start

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        """Replace owner.attribute by a timed version, if it exists."""
        original = getattr(owner, attribute, None)
        if original is None or getattr(original, "_bench_timed", False):
            return

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self(label):
                return original(*args, **kwargs)

        timed._bench_timed = True  # type: ignore[attr-defined]
        setattr(owner, attribute, timed)

    def wrap_parts(self, parts: list[tuple[str, str, str]]) -> None:
        """wrap() each (module, attribute, label); the modules are imported by name."""
        for module, attribute, label in parts:
            self.wrap(importlib.import_module(module), attribute, label)


# The pipeline's functions whose time a stage splits out, as (module, attribute, label).
INGEST_PARTS = [
    ("ingest.submissions", "sha256_of", "ingest_inbox: sha256_of"),
    ("ingest.submissions", "_stage_in_archive", "ingest_inbox: _stage_in_archive (copy, sha256, fsync)"),
    ("ingest.submissions", "detect_encoding", "ingest_inbox: detect_encoding"),
    ("ingest.sniff", "detect_encoding", "ingest_inbox: detect_encoding"),
    ("ingest.submissions", "to_utf8", "ingest_inbox: to_utf8"),
    ("ingest.submissions", "load_file", "ingest_inbox: load_file (sniff + read_csv insert)"),
    ("ingest.submissions", "load_text", "ingest_inbox: load_text (sniff + read_csv insert)"),
    ("ingest.raw_lake", "write", "ingest_inbox: raw_lake.write (the Parquet copy)"),
]
VALIDATE_PARTS = [
    ("flows.stages", "validate_pending", "validate_pending (total)"),
    ("expectations.validate", "prepare_batches", "validate_pending: prepare_batches"),
    # validate imports run_suites by name: its own reference is the one the stage calls.
    ("expectations.validate", "run_suites", "validate_pending: run_suites (GX)"),
    ("expectations.suites", "_failing_rows", "run_suites, of which: failing rows past the sample"),
]


def _validate_rest(parts: dict[str, float]) -> None:
    """What validate_pending spends outside its wrapped parts, so that the split adds up."""
    total = parts.get("validate_pending (total)")
    if total is not None:
        known = sum(v for k, v in parts.items() if k.startswith("validate_pending:"))
        parts["validate_pending: rest (connect, verdicts, update)"] = total - known


def _time_dbt(timer: Timer, models: dict[str, float]) -> None:
    """Split dbt into parse and build, and keep each model's own execution time."""
    try:
        from dbt.cli.main import dbtRunner
    except ImportError:  # pragma: no cover
        return
    from harmonise.dbt import DbtProject

    timer.wrap(DbtProject, "prepare_validation", "dbt: prepare_validation (seeds + views)")
    timer.wrap(DbtProject, "build_marts", "dbt: build_marts")
    original = dbtRunner.invoke
    if getattr(original, "_bench_timed", False):
        return

    def invoke(self: Any, args: list[str], **kwargs: Any) -> Any:
        if args and args[0] == "parse":
            with timer("dbt: parse (inside the first dbt call)"):
                result = original(self, args, **kwargs)
        else:
            result = original(self, args, **kwargs)
        for node in getattr(getattr(result, "result", None), "results", None) or []:
            name = getattr(getattr(node, "node", None), "name", None)
            seconds = getattr(node, "execution_time", None)
            if name and seconds is not None:
                models[name] = models.get(name, 0.0) + float(seconds)
        return result

    invoke._bench_timed = True  # type: ignore[attr-defined]
    dbtRunner.invoke = invoke


def _query(database: Path, sql: str) -> Any:
    """The first value of the first row, read after the stage has closed its connection."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


# --------------------------------------------------------------------------- stages


def stage_ingest(root: str) -> dict:
    """`ingest.submissions.ingest_inbox` on whatever waits in root/inbox."""
    from hmo.settings import Paths
    from ingest.submissions import ingest_inbox
    from hmo.warehouse import connect

    paths = Paths(Path(root))
    timer = Timer()
    timer.wrap_parts(INGEST_PARTS)
    start = time.perf_counter()
    with timer("connect"):
        con = connect(paths.warehouse)
    try:
        with timer("ingest_inbox"):
            summary = ingest_inbox(con, paths)
    finally:
        with timer("close (checkpoint)"):
            con.close()
    seconds = time.perf_counter() - start
    failed = [f"{item.path.name}: {error}" for item, error in summary.failed]
    rows = _query(paths.warehouse, "select count(*) from raw.observations")
    return {"seconds": seconds, "parts": timer.parts, "rows": rows, "failed": failed}


def stage_ingest_baseline(database: str, csv: str) -> dict:
    """DuckDB's own fastest load of the same file, into a fresh database file."""
    import duckdb

    timer = Timer()
    start = time.perf_counter()
    con = duckdb.connect(database)
    try:
        con.execute("SET preserve_insertion_order = false")
        with timer("create table as read_csv(all_varchar)"):
            con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?, all_varchar = true)", [csv])
        # ingest also writes the raw layer's Parquet copy (ingest/raw_lake.py): the baseline does the same
        with timer("copy t to parquet (zstd)"):
            con.execute(f"COPY t TO '{database}.parquet' (FORMAT parquet, COMPRESSION zstd)")
    finally:
        with timer("close (checkpoint)"):
            con.close()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "parts": timer.parts, "rows": _query(Path(database), "select count(*) from t")}


def stage_validate(root: str, ingest: bool = False) -> dict:
    """`flows.stages.validate(paths, DbtProject(paths))`, split into dbt and the suites.

    With `ingest`, `flows.stages.ingest` first, in the same process: a file
    from inbox to verdict, as `hmo run` starts.
    """
    import flows.stages as stages
    from harmonise.dbt import DbtProject
    from hmo.settings import Paths

    paths = Paths(Path(root))
    timer = Timer()
    models: dict[str, float] = {}
    timer.wrap_parts((INGEST_PARTS if ingest else []) + VALIDATE_PARTS)
    start = time.perf_counter()
    with timer("import dbt (the pipeline imports it in its first dbt call)"):
        _time_dbt(timer, models)
    ingested = None
    if ingest:
        with timer("ingest"):
            ingested = stages.ingest(paths)
    dbt = DbtProject(paths)
    verdicts = stages.validate(paths, dbt)
    seconds = time.perf_counter() - start
    _validate_rest(timer.parts)
    result = {
        "seconds": seconds,
        "parts": timer.parts,
        "dbt_models": models,
        "statuses": dict(Counter(v.status for v in verdicts)),
    }
    if ingested is not None:
        result["failed"] = [f"{item.path.name}: {error}" for item, error in ingested.failed]
        result["rows"] = _query(paths.warehouse, "select count(*) from raw.observations")
        result["profiles"] = _query(paths.warehouse,
                                    "select list(profile order by submission_id) from raw.submissions")
    return result


def stage_validate_baseline(root: str) -> dict:
    """The same checks as plain DuckDB SQL: prepare_batches, then each rule's query."""
    import duckdb

    from expectations.rules import RULES
    from expectations.suites import BATCH_TABLES
    from expectations.validate import prepare_batches

    database = Path(root) / "warehouse.duckdb"
    timer = Timer()
    failing: dict[str, int] = {}
    start = time.perf_counter()
    con = duckdb.connect(str(database))
    # The pipeline's own memory limit, so that both sides work under the same cap.
    limit = memory_limit()
    con.execute(f"set memory_limit = '{limit}'")
    try:
        with timer("prepare_batches"):
            pending = len(prepare_batches(con))
        for rule in RULES:
            if not rule.sql:  # checked by GX's built-in expectations (S01), on a handful of files
                continue
            sql = rule.sql.replace("{batch}", BATCH_TABLES[rule.target])
            with timer(f"rule {rule.rule_id}"):
                failing[rule.rule_id] = len(con.execute(sql).fetchall())
    finally:
        with timer("close"):
            con.close()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "parts": timer.parts, "pending": pending, "failing": failing,
            "memory_limit": limit}


def stage_dbt_build(root: str, target: str, exclude: list[str]) -> dict:
    """The whole dbt project built on one target from scratch, then again with nothing new (bench/spark.py).
    On Spark the first build starts the JVM and the local Spark session: that is part of its time."""
    import duckdb

    from flows.export import open_spark_tables
    from harmonise.dbt import SPARK, DbtProject
    from hmo.settings import Paths

    paths = Paths(Path(root))
    dbt = DbtProject(paths, target=target)
    start = time.perf_counter()
    dbt.build_all(full_refresh=True, exclude=exclude)
    full = time.perf_counter() - start
    start = time.perf_counter()
    dbt.build_all(exclude=exclude)
    again = time.perf_counter() - start
    con = open_spark_tables(paths)[0] if target == SPARK else duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        counted = con.execute("select count(*), sum(count) from marts.fct_flows").fetchone()
    finally:
        con.close()
    assert counted is not None
    return {"seconds": full, "again": again, "fct_flows_rows": counted[0], "persons": int(counted[1] or 0)}


def stage_pipeline(root: str) -> dict:
    """The stages of `hmo run` called in order, without Prefect (flows.stages)."""
    import flows.stages as stages
    from harmonise.dbt import DbtProject
    from hmo.settings import Paths

    paths = Paths(Path(root))
    timer = Timer()
    models: dict[str, float] = {}
    timer.wrap(stages, "validate_pending", "validate: validate_pending")
    start = time.perf_counter()
    with timer("import dbt (the pipeline imports it in its first dbt call)"):
        _time_dbt(timer, models)
    def timed(stage: str, function, *args):  # type: ignore[no-untyped-def]
        with timer(stage):
            return function(*args)

    summary = stages.run(paths, DbtProject(paths), call=timed)
    ingested, verdicts = summary.ingested, summary.verdicts
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "parts": timer.parts,
        "dbt_models": models,
        "statuses": dict(Counter(v.status for v in verdicts)),
        "failed": [f"{item.path.name}: {error}" for item, error in ingested.failed],
    }


# Where ingest's time goes, outside the pipeline: its load statement rebuilt by
# hand for a standard 10-column file, one ingredient at a time (see docs/benchmarks.md).
_MAPPED = ", ".join(f"nullif(trim(c{i}), '')" for i in range(10))
_RAW = ("create table obs (submission_id integer not null, source_row bigint not null, "
        + ", ".join(f"v{i} varchar" for i in range(10)) + ")")
INGEST_VARIANTS: dict[str, tuple[str, list[str]]] = {
    "sequential_numbered": (
        "row_number() over a sequential read (the pipeline at 65e6f0d): INSERT INTO an existing table SELECT "
        "row_number() OVER () + 1, nullif(trim(cell), '') ... FROM read_csv(explicit columns, parallel = "
        "false), insertion order kept",
        [_RAW, "set preserve_insertion_order = true",
         f"insert into obs select 1, row_number() over () + 1, {_MAPPED} from {{sequential}}"]),
    "sequential_read": (
        "only the sequential read: CREATE TABLE AS SELECT * FROM read_csv(explicit columns, parallel = false)",
        ["set preserve_insertion_order = false", "create table obs as select * from {sequential}"]),
    "parallel_numbered": (
        "row_number() over a parallel read (the shape before): INSERT ... row_number() OVER (), trimmed "
        "cells FROM read_csv(parallel), insertion order kept",
        [_RAW, "set preserve_insertion_order = true",
         f"insert into obs select 1, row_number() over () + 1, {_MAPPED} from {{read}}"]),
    "unnumbered": (
        "no numbering: INSERT ... SELECT 1, 0, trimmed cells FROM read_csv(parallel), insertion order not kept",
        [_RAW, "set preserve_insertion_order = false", f"insert into obs select 1, 0, {_MAPPED} from {{read}}"]),
    "unnumbered_untrimmed": (
        "no numbering, cells as read (no nullif/trim): INSERT ... SELECT 1, 0, * FROM read_csv(parallel)",
        [_RAW, "set preserve_insertion_order = false", "insert into obs select 1, 0, * from {read}"]),
    "staged_rowid": (
        "numbered by position (the pipeline since c2717dd): CREATE TEMP TABLE stage AS SELECT * FROM "
        "read_csv(parallel) (order kept), "
        "then SET preserve_insertion_order = false; INSERT ... SELECT 1, rowid + 2, trimmed cells FROM stage",
        [_RAW, "set preserve_insertion_order = true", "create temp table stage as select * from {read}",
         "set preserve_insertion_order = false",
         f"insert into obs select 1, rowid + 2, {_MAPPED} from stage", "drop table stage"]),
    "staged_rowid_untrimmed": (
        "the same, cells as read (trimming left to dbt's staging model, which trims again anyway)",
        [_RAW, "set preserve_insertion_order = true", "create temp table stage as select * from {read}",
         "set preserve_insertion_order = false",
         "insert into obs select 1, rowid + 2, * from stage", "drop table stage"]),
}


def stage_ingest_variant(database: str, csv: str, variant: str) -> dict:
    """One INGEST_VARIANTS entry in a fresh database file, under the pipeline's memory limit."""
    import duckdb

    columns = {f"c{i}": "varchar" for i in range(10)}
    read = (f"read_csv('{csv}', header = false, skip = 1, delim = ',', quote = '\"', escape = '\"', "
            f"columns = {columns!r}, null_padding = true, strict_mode = true, auto_detect = false")
    sequential, read = read + ", parallel = false)", read + ")"
    limit = memory_limit()
    timer = Timer()
    start = time.perf_counter()
    con = duckdb.connect(database)
    try:
        con.execute(f"set memory_limit = '{limit}'")
        with timer("statements"):
            for sql in INGEST_VARIANTS[variant][1]:
                con.execute(sql.replace("{read}", read).replace("{sequential}", sequential))
        rows = con.execute("select count(*) from obs").fetchone()[0]
    finally:
        with timer("close (checkpoint)"):
            con.close()
    return {"seconds": time.perf_counter() - start, "parts": timer.parts, "rows": rows, "memory_limit": limit}


STAGES: dict[str, Callable[..., dict]] = {
    "ingest_variant": stage_ingest_variant,
    "ingest": stage_ingest,
    "ingest_baseline": stage_ingest_baseline,
    "validate": stage_validate,
    "validate_baseline": stage_validate_baseline,
    "pipeline": stage_pipeline,
    "dbt_build": stage_dbt_build,
}


def main(argv: list[str]) -> int:
    stage, kwargs_json, result_path = argv
    kwargs = json.loads(kwargs_json)
    profile_path = kwargs.pop("profile", None)
    profiler = None
    if profile_path:
        try:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.005)
            profiler.start()
        except ImportError:
            Path(profile_path).write_text("pyinstrument is not installed\n")
    try:
        result = STAGES[stage](**kwargs)
    finally:
        if profiler is not None:
            profiler.stop()
            Path(profile_path).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    result["self_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(result_path).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
