"""The raw layer also as Parquet, partitioned by submission, for engines other than DuckDB.

Spark and Trino cannot open a DuckDB file, so ingest, the raw layer's only
writer, writes each received submission's registry row and rows a second time
as Parquet files in hive layout (issue #15):

    <data>/raw/submissions/submission_id=<id>/part-0.parquet
    <data>/raw/observations/submission_id=<id>/part-0.parquet

(country and period are columns of the rows; the submission id is the
partition's name). A partition is written in `<data>/raw/.staging/` and renamed
into place whole, so a reader never sees half of one; the registry's partition
comes last, so a submission listed there has all its rows. The files are a copy
of what the warehouse holds, written once a submission is received: a crash or
a full disk in between leaves a partition missing, never wrong, and the next
ingest writes it (`write_missing`). Verdicts are not raw: they stay in the
validation schema.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb

from hmo import lake
from hmo.settings import Paths

log = logging.getLogger(__name__)
# The registry last: its partition says the rows' partition is whole.
TABLES = ("observations", "submissions")


def partition(paths: Paths, table: str, submission_id: int) -> Path:
    return paths.raw_lake / table / f"submission_id={int(submission_id)}"


def write(con: duckdb.DuckDBPyConnection, paths: Paths, submission_id: int) -> None:
    """Write (or write again) one received submission's partitions."""
    for table in TABLES:
        lake.replace_folder(con, f"select * exclude (submission_id) from raw.{table} "
                                 f"where submission_id = {int(submission_id)}",
                            partition(paths, table, submission_id), paths.raw_lake)


def write_aliases(con: duckdb.DuckDBPyConnection, paths: Paths) -> None:
    """raw.national_aliases as it is now, whole (ingest/aliases.py replaces the table whole too)."""
    lake.replace_folder(con, "select * from raw.national_aliases", paths.raw_lake / "national_aliases",
                        paths.raw_lake)


def write_received(con: duckdb.DuckDBPyConnection, paths: Paths, submission_id: int) -> bool:
    """`write`, at the moment a submission is received. A failure (a full disk) is logged and left for the
    next ingest: the warehouse holds the rows, and the file has been received whatever the copy does."""
    try:
        write(con, paths, submission_id)
        return True
    except (OSError, duckdb.IOException) as exc:
        log.warning("submission %d: the Parquet copy of the raw layer could not be written (%s); "
                    "the next ingest writes it", submission_id, exc)
        return False


def write_missing(con: duckdb.DuckDBPyConnection, paths: Paths) -> list[int]:
    """Every received submission that has no registry partition yet, written; returns their ids."""
    folder = paths.raw_lake / "submissions"
    present = {name.removeprefix("submission_id=") for name in os.listdir(folder)} if folder.is_dir() else set()
    missing = [submission_id for (submission_id,) in con.execute(
        "select submission_id from raw.submissions where load_state = 'received' order by 1").fetchall()
        if str(submission_id) not in present]
    for submission_id in missing:
        write(con, paths, submission_id)
    lake.clear_staging(paths.raw_lake)
    return missing
