"""The same dbt project on Spark (issue #15): built with pyspark from the Parquet copies a real `hmo run`
wrote, its fct_flows equals DuckDB's row for row, before and after a revision replaced a slice."""
from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from conftest import drop, drop_sample
from hmo.settings import Paths

pytestmark = pytest.mark.spark

HMO = [sys.executable, "-m", "flows.cli"]
HEADER = "pais_reporte;periodo;tipo_flujo;punto_fronterizo;pais_contraparte;sexo;edad;nacionalidad;cantidad\n"
REVISED = HEADER + "MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;_T;_T;Honduras;777\n"


def _hmo(paths: Paths, *args: str) -> str:
    done = subprocess.run([*HMO, *args], env={**os.environ, "HMO_DATA_DIR": str(paths.root)},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"hmo {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _both_exports(paths: Paths, name: str) -> tuple[list[tuple], list[tuple], list[str]]:
    """fct_flows exported from the published DuckDB copy and from Spark's tables, as sorted rows."""
    duck, spark = paths.root.parent / f"{name}-duckdb.parquet", paths.root.parent / f"{name}-spark.parquet"
    _hmo(paths, "export", "fct_flows", "--format", "parquet", "--output", str(duck))
    _hmo(paths, "export", "fct_flows", "--format", "parquet", "--target", "spark", "--output", str(spark))
    columns = [row[0] for row in duckdb.execute(f"describe select * from '{duck}'").fetchall()]
    # Spark keeps a table's partition columns last: the rows are compared column by column, by name.
    picked = ", ".join(f'"{column}"' for column in columns)
    rows = [duckdb.execute(f"select {picked} from '{path}' order by all").fetchall() for path in (duck, spark)]
    return rows[0], rows[1], columns


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    paths = Paths(tmp_path_factory.mktemp("spark") / "data")
    paths.ensure()
    for country in ("MEX", "GTM", "PAN", "CRI"):
        drop_sample(paths, country)
    _hmo(paths, "run")
    return paths


def test_spark_builds_fct_flows_equal_to_duckdb_before_and_after_a_revision(data):
    out = _hmo(data, "build", "--target", "spark")
    assert f"built the marts on Spark from {data.raw_lake} and {data.validation_lake}" in out
    duck, spark, columns = _both_exports(data, "first")
    assert {"reporting_country", "period", "flow_type", "count", "route"} <= set(columns)
    assert len(duck) > 20 and {row[columns.index("reporting_country")] for row in duck} >= {"MEX", "PAN", "CRI"}
    assert spark == duck

    drop(data, "MEX", "eventos_enero_2024_revisado.csv", REVISED.encode("cp1252"))
    _hmo(data, "run")
    _hmo(data, "build", "--target", "spark")  # incremental: the revised slice's partition is overwritten
    duck, spark, columns = _both_exports(data, "revised")
    mexico = [row for row in spark if row[columns.index("reporting_country")] == "MEX"]
    assert [(row[columns.index("nationality")], row[columns.index("count")]) for row in mexico] == [("HND", 777)]
    assert spark == duck


def test_without_a_warehouse_the_spark_build_says_what_to_run_first(tmp_path):
    done = subprocess.run([*HMO, "build", "--target", "spark"], env={**os.environ, "HMO_DATA_DIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Spark builds from what `hmo run` received" in done.stderr
