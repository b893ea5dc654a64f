"""The raw layer's Parquet copy: what ingest received, one whole partition per submission, readable by any engine."""
from __future__ import annotations

import os

import duckdb
import pyarrow.dataset as ds

from conftest import STANDARD_HEADER, drop, drop_sample
from hmo import lake
from ingest import raw_lake
from ingest.submissions import ingest_inbox
from hmo.warehouse import connect

ROWS = STANDARD_HEADER + "".join(f"\nCRI,2024-0{month},ENTRY,_T,_T,_T,_T,VEN,{count},A"
                                 for month, count in ((1, 120), (2, 95)))


def _warehouse(paths, sql):
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_each_received_submission_is_a_hive_partition_with_the_rows_and_registry_the_warehouse_holds(paths):
    drop_sample(paths, "PAN")
    drop(paths, "CRI", "entradas.csv", ROWS)
    con = connect(paths.warehouse)
    try:
        ingest_inbox(con, paths)
    finally:
        con.close()
    assert sorted(os.listdir(paths.raw_lake / "observations")) == ["submission_id=1", "submission_id=2"]
    # Any engine reads the folders as one table, the submission id from the partition's name (Spark does so too).
    rows = ds.dataset(paths.raw_lake / "observations", format="parquet", partitioning="hive").to_table()
    assert rows.num_rows == _warehouse(paths, "select count(*) from raw.observations")[0][0]
    lake = duckdb.execute(f"select submission_id, source_row, reporting_country, period, count from read_parquet("
                          f"'{paths.raw_lake}/observations/*/*.parquet', hive_partitioning = true) order by all").fetchall()
    assert lake == _warehouse(paths, "select submission_id, source_row, reporting_country, period, count "
                                     "from raw.observations order by all")
    registry = duckdb.execute(f"select submission_id, reporting_country, file_name, load_state, data_rows from read_parquet("
                              f"'{paths.raw_lake}/submissions/*/*.parquet', hive_partitioning = true) order by 1").fetchall()
    assert registry == _warehouse(paths, "select submission_id, reporting_country, file_name, load_state, data_rows "
                                         "from raw.submissions order by 1")
    assert ("CRI", "entradas.csv", "received", 2) in [row[1:] for row in registry]
    assert not (paths.raw_lake / ".staging").exists()


def test_a_partition_a_crash_kept_from_being_written_is_written_by_the_next_ingest(paths):
    drop(paths, "CRI", "entradas.csv", ROWS)
    con = connect(paths.warehouse)
    try:
        ingest_inbox(con, paths)
        # The power went after the warehouse was written, while the copy was still in .staging.
        (paths.raw_lake / ".staging").mkdir()
        for table in raw_lake.TABLES:
            os.replace(raw_lake.partition(paths, table, 1), paths.raw_lake / ".staging" / f"{table}-1")
        (paths.raw_lake / ".staging" / "observations-1" / lake.FILE).write_bytes(b"half a file")
        assert ingest_inbox(con, paths).received == []  # nothing new in the inbox
    finally:
        con.close()
    counts = duckdb.execute(f"select period, count from read_parquet('{paths.raw_lake}/observations/*/*.parquet') "
                            "order by 1").fetchall()
    assert counts == [("2024-01", "120"), ("2024-02", "95")]
    assert not (paths.raw_lake / ".staging").exists()
