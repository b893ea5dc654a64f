"""The DuckDB warehouse file and its raw layer.

One process writes (the pipeline); everybody else opens it read-only.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb

from hmo.errors import ConfigurationError, SchemaMismatch, WarehouseBusy
from hmo.settings import PROJECT_ROOT


RAW_LAYER_MACRO = PROJECT_ROOT / "dbt_project" / "macros" / "raw_layer.sql"


def _raw_layer_ddl() -> str:
    """The body of dbt's `create_raw_layer` macro: one definition of the DDL for dbt and for us."""
    text = RAW_LAYER_MACRO.read_text(encoding="utf-8")
    found = re.search(r"\{% macro create_raw_layer\(\) -%\}(.*?)\{%- endmacro %\}", text, re.S)
    if found is None or "{{" in found.group(1) or "{%" in found.group(1):
        raise ConfigurationError(f"{RAW_LAYER_MACRO}: create_raw_layer must hold plain SQL")
    return found.group(1)


RAW_DDL = _raw_layer_ddl()
_VERSION = re.search(r"insert into main\.hmo_schema select (\d+)", RAW_DDL)
assert _VERSION is not None, f"{RAW_LAYER_MACRO}: create_raw_layer must insert the schema version"
# Raised whenever a table or column of the DDL changes meaning or shape (see the macro).
SCHEMA_VERSION = int(_VERSION.group(1))



def memory_limit() -> str:
    # DuckDB's own limit; its hash tables overshoot it by up to ~0.4 GB, and
    # Python with dbt and GX adds ~0.45 GB: at 1GB, validating 10M rows peaked
    # at 1.5-1.9 GB, at 768MB at 1.3-1.4 GB for ~1 s more (docs/benchmarks.md).
    return os.environ.get("HMO_MEMORY_LIMIT", "768MB")


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; the writer also makes sure the raw layer exists."""
    if read_only and not path.exists():
        raise WarehouseBusy(f"no warehouse at {path}: run `hmo run` first")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise WarehouseBusy(
            f"the warehouse {path} is in use by another process ({exc}); try again when it ends"
        ) from exc
    # Order matters only where rows are numbered (ingest turns it on there);
    # elsewhere dropping it roughly halves time and memory of big statements.
    con.execute("set preserve_insertion_order = false")
    # Big statements spill to disk beyond this, so a 10M-row submission fits a
    # small machine beside dbt and Great Expectations.
    con.execute(f"set memory_limit = '{memory_limit()}'")
    if not read_only:
        _check_schema(con, path)
        con.execute(RAW_DDL)
    return con


def _check_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    tables = {row[0] for row in con.execute(
        "select schema_name || '.' || table_name from duckdb_tables()"
    ).fetchall()}
    if "raw.submissions" not in tables:
        return  # a new warehouse
    version = None
    if "main.hmo_schema" in tables:
        found = con.execute("select max(version) from main.hmo_schema").fetchone()
        assert found is not None  # an aggregate always returns a row
        version = found[0]
    if version != SCHEMA_VERSION:
        con.close()
        raise SchemaMismatch(
            f"the warehouse {path} has schema version {version or 1}, this Observatory needs "
            f"{SCHEMA_VERSION}: run `hmo rebuild` (it rebuilds the warehouse from the archive)"
        )


def publish(warehouse: Path, published: Path) -> Path:
    """Give readers the warehouse as it is now: a copy swapped in with one rename.

    Called with no connection open (the writer's lock held), so the file is
    consistent. Readers that opened the previous copy keep reading it; the next
    reader gets this one; nobody ever sees half of either, and nobody reading
    can block the pipeline, which never opens the published copy.
    """
    if warehouse.with_name(warehouse.name + ".wal").exists():
        # A write-ahead log left by a process that did not close cleanly: fold it in first.
        duckdb.connect(str(warehouse)).execute("checkpoint").close()
    published.parent.mkdir(parents=True, exist_ok=True)
    partial = published.with_name(published.name + ".partial")
    shutil.copyfile(warehouse, partial)
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    partial.replace(published)
    return published


# A query may spill past memory_limit, but not fill the disk the archive lives on.
READER_TEMP_LIMIT = "4GB"


def open_published(published: Path) -> duckdb.DuckDBPyConnection:
    """The published copy, read-only and locked down: no file, extension or setting reachable from SQL.

    Every reader opens it through here. The settings are given when connecting, not SET after: within one
    process (`hmo serve`: the portal's queries, the watcher's report) DuckDB shares one database per file,
    and a reader that locked it down would make the next reader's SET fail; the same settings each time
    share it as they are. A read-only file still lets a query COPY TO, read_csv or ATTACH any path, load
    extensions and raise its own limits: external access and configuration are shut for good.
    """
    con = duckdb.connect(str(published), read_only=True, config={
        "memory_limit": memory_limit(), "threads": min(4, os.cpu_count() or 1),
        "max_temp_directory_size": READER_TEMP_LIMIT,
        "enable_external_access": False, "lock_configuration": True,
    })
    try:
        # Tables are nameable without their schema (once a build has made them); search_path is the
        # connection's own, which the lock leaves settable.
        present = {row[0] for row in con.execute("select schema_name from information_schema.schemata").fetchall()}
        schemas = [s for s in ("marts", "publication", "main", "raw") if s in present]
        con.execute(f"set search_path = '{','.join(schemas)}'")
    except BaseException:
        con.close()
        raise
    return con
