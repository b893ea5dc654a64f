"""The DuckDB warehouse file and its raw layer.

One process writes (the pipeline); everybody else opens it read-only.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from ingest.errors import SchemaMismatch, WarehouseBusy

# Raised whenever a table or column of the DDL below changes meaning or shape:
# a warehouse of another version is rebuilt from the archive (`hmo rebuild`),
# never patched in place.
SCHEMA_VERSION = 3

RAW_DDL = """
create schema if not exists raw;
create sequence if not exists raw.submission_id_seq start 1;
create table if not exists raw.submissions (
    submission_id integer primary key,
    reporting_country varchar not null,   -- the inbox folder
    file_name varchar not null,
    archive_path varchar not null,
    sha256 varchar not null,
    size_bytes bigint not null,
    encoding varchar,
    delimiter varchar,
    profile varchar,
    source_columns varchar[],             -- header as written
    column_names varchar,                 -- JSON: standard column -> header(s) read, null if the profile fixes it
    missing_columns varchar[],            -- "standard column=source column" the file lacks
    duplicate_columns varchar[],          -- headers that name one standard column twice
    read_error varchar,                   -- why the file could not be read as a table
    data_rows bigint,
    notes varchar[],
    sum_duplicates boolean not null default false,  -- the profile sums rows of one standard key
    received_at timestamptz not null,
    decided_at timestamptz,
    status varchar not null               -- received | accepted | rejected
);
create table if not exists raw.observations (
    submission_id integer not null,
    source_row bigint not null,           -- row as a spreadsheet shows it (header = 1)
    reporting_country varchar,
    period varchar,
    flow_type varchar,
    border_point varchar,
    counterpart_country varchar,
    sex varchar,
    age varchar,
    nationality varchar,
    count varchar,
    obs_status varchar
);
create table if not exists raw.rule_failures (
    submission_id integer not null,
    rule_id varchar not null,
    severity varchar not null,            -- error | warning
    source_row bigint,
    column_name varchar,
    value varchar,
    detail varchar
);
-- a file whose bytes were already received from the same country: answered, not loaded again
create sequence if not exists raw.duplicate_id_seq start 1;
create table if not exists raw.duplicates (
    duplicate_id integer primary key,
    submission_id integer not null,       -- the submission with the same bytes
    reporting_country varchar not null,
    file_name varchar not null,
    received_at timestamptz not null
);
-- what lies in the inbox that the Observatory will not read, and why (refreshed each ingest)
create table if not exists raw.refused_files (
    path varchar primary key,             -- relative to the inbox
    reason varchar not null,
    first_seen timestamptz not null,
    last_seen timestamptz not null
);
-- each reporting country's own spellings of country names (ingest/aliases.py; refreshed each ingest)
create table if not exists raw.national_aliases (
    reporting_country varchar not null,
    name varchar not null,                -- as the country writes it
    code varchar not null,
    source varchar not null,              -- why: the agency's export, a statistician's request
    added_by varchar,
    added_at varchar,
    alias_file varchar not null           -- where the line is kept
);
-- which version of the dbt project (harmonise.dbt.project_fingerprint) built each step
create table if not exists main.hmo_build_state (step varchar, fingerprint varchar);
-- submissions up to this id passed the audit build: their verdicts are final
create table if not exists main.hmo_audit (audited_through integer not null, audited_at timestamptz not null);
create table if not exists main.hmo_schema (version integer not null);
"""


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
        if not con.execute("select count(*) from main.hmo_schema").fetchone()[0]:
            con.execute("insert into main.hmo_schema values (?)", [SCHEMA_VERSION])
    return con


def _check_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    tables = {row[0] for row in con.execute(
        "select schema_name || '.' || table_name from duckdb_tables()"
    ).fetchall()}
    if "raw.submissions" not in tables:
        return  # a new warehouse
    version = con.execute("select max(version) from main.hmo_schema").fetchone()[0] \
        if "main.hmo_schema" in tables else None
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
