"""Tables of the warehouse copied as Parquet folders that any engine reads (Spark, Trino, DuckDB).

Each folder holds one file, written beside it in `.staging/` and renamed into
place whole, so that a reader sees the folder as it was or as it is, never half
of it. The stage that owns a schema is the only one that writes its folders
(docs/architecture.md): ingest the raw layer's, validation its verdicts'.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import duckdb

from hmo.durable import fsync_path
from hmo.settings import Paths

FILE = "part-0.parquet"
STAGING = ".staging"


def replace_folder(con: duckdb.DuckDBPyConnection, query: str, folder: Path, staging_root: Path) -> None:
    """Write `query`'s rows as `folder`/part-0.parquet, replacing what the folder held, in one rename.

    `query` is SQL of ours (table names, integer ids): no text of a submitted file reaches it."""
    ready = staging_root / STAGING / "-".join(folder.relative_to(staging_root).parts)
    shutil.rmtree(ready, ignore_errors=True)
    ready.mkdir(parents=True)
    target = ready / FILE
    con.execute(f"copy ({query}) to '{target.as_posix()}' (format parquet, compression zstd)")
    fsync_path(target)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():  # rename cannot replace a folder that has files: the old one goes first
        aside = ready.with_name(ready.name + ".old")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(folder, aside)
        os.replace(ready, folder)
        shutil.rmtree(aside)
    else:
        os.replace(ready, folder)
    fsync_path(folder.parent)
    with contextlib.suppress(OSError):  # another folder may be on its way there
        (staging_root / STAGING).rmdir()


def clear_staging(staging_root: Path) -> None:
    """What a crash left half-written: never read, so dropped."""
    shutil.rmtree(staging_root / STAGING, ignore_errors=True)


def write_validation(con: duckdb.DuckDBPyConnection, paths: Paths) -> None:
    """The validation schema's tables as they are now, whole: they are small, and the audit may add
    failures to a submission decided before."""
    for table in ("verdicts", "rule_failures"):
        replace_folder(con, f"select * from validation.{table}", paths.validation_lake / table, paths.validation_lake)
