"""A Parquet folder of the lake is replaced whole: a reader sees the old rows or the new, never a mix or half."""
from __future__ import annotations

import os

import duckdb
import pytest

from hmo import lake


def _rows(folder):
    return duckdb.execute(f"select * from read_parquet('{folder}/*.parquet') order by 1").fetchall()


def test_a_folder_is_replaced_whole_and_leaves_no_staging_behind(tmp_path):
    con = duckdb.connect()
    folder = tmp_path / "validation" / "verdicts"
    lake.replace_folder(con, "select * from range(3) as t(n)", folder, tmp_path / "validation")
    lake.replace_folder(con, "select * from range(10, 12) as t(n)", folder, tmp_path / "validation")

    assert _rows(folder) == [(10,), (11,)]
    assert os.listdir(folder) == [lake.FILE]
    assert not (tmp_path / "validation" / lake.STAGING).exists()


def test_a_copy_that_fails_keeps_the_folder_as_it_was(tmp_path):
    con = duckdb.connect()
    folder = tmp_path / "raw" / "national_aliases"
    lake.replace_folder(con, "select 'PAN' as country", folder, tmp_path / "raw")
    with pytest.raises(duckdb.Error):
        lake.replace_folder(con, "select * from no_such_table", folder, tmp_path / "raw")

    assert _rows(folder) == [("PAN",)]
