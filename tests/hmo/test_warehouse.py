"""The raw layer's DDL has one home, dbt's `create_raw_layer` macro, used by dbt and by ingest."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from hmo import warehouse
from hmo.settings import PROJECT_ROOT


def test_ingest_runs_the_macro_body_as_it_stands():
    text = warehouse.RAW_LAYER_MACRO.read_text(encoding="utf-8")
    assert warehouse.RAW_DDL.strip() in text
    assert "create table if not exists raw.submissions" in warehouse.RAW_DDL
    assert f"insert into main.hmo_schema select {warehouse.SCHEMA_VERSION} " in warehouse.RAW_DDL


def test_dbt_build_works_on_an_empty_warehouse_that_hmo_then_opens(tmp_path: Path):
    target = tmp_path / "warehouse.duckdb"
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [str(dbt), "build", "--profiles-dir", ".", "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        cwd=PROJECT_ROOT / "dbt_project", capture_output=True, text=True, timeout=300,
        env={**os.environ, "HMO_WAREHOUSE": str(target), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    assert result.returncode == 0, result.stdout[-3000:]
    con = warehouse.connect(target)  # no SchemaMismatch: dbt wrote the version too
    try:
        assert con.execute("select version from main.hmo_schema").fetchall() == [(warehouse.SCHEMA_VERSION,)]
        assert con.execute("select count(*) from marts.fct_flows").fetchone() == (0,)
    finally:
        con.close()
    assert duckdb.connect(str(target), read_only=True).execute(
        "select count(*) from raw.submissions").fetchone() == (0,)
