"""Figures as they stood: `hmo sql --as-of` and `hmo history` after a revision (standard Q04)."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from conftest import drop
from flows import stages
from flows.cli import main
from flows.query import QueryRefused, as_of_moment
from hmo.settings import Paths

HEADER = "pais_reporte;periodo;tipo_flujo;punto_fronterizo;pais_contraparte;sexo;edad;nacionalidad;cantidad\n"
FIRST = (HEADER + "MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;_T;_T;Honduras;500\n"
         "MEX;2024-02;ENCOUNTER;TAPACHULA;GTM;_T;_T;Honduras;40\n")
REVISED = HEADER + "MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;_T;_T;Honduras;777\n"
SUM = "select period, sum(count) as persons from fct_flows where reporting_country = 'MEX' group by 1 order by 1"


@pytest.fixture(scope="module")
def revised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Paths, datetime]:
    paths = Paths(tmp_path_factory.mktemp("as_of") / "data")
    paths.ensure()
    drop(paths, "MEX", "eventos_2024.csv", FIRST)
    stages.run(paths)
    between = datetime.now(timezone.utc)
    time.sleep(0.01)
    drop(paths, "MEX", "eventos_enero_2024_revisado.csv", REVISED)
    stages.run(paths)
    return paths, between


def _sql(capsys, paths: Paths, *args: str) -> list[dict]:
    assert main(["sql", *args, "--format", "json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_as_of_gives_the_figures_before_the_revision_and_without_it_the_revised_ones(revised, capsys,
                                                                                      monkeypatch):
    paths, between = revised
    monkeypatch.setenv("HMO_DATA_DIR", str(paths.root))
    now = _sql(capsys, paths, SUM)
    assert [(r["period"], r["persons"]) for r in now] == [("2024-01-01", 777), ("2024-02-01", 40)]
    then = _sql(capsys, paths, "--as-of", between.isoformat(), SUM)
    assert [(r["period"], r["persons"]) for r in then] == [("2024-01-01", 500), ("2024-02-01", 40)]
    # Before anything was decided, nothing stood; the end of today holds everything.
    assert _sql(capsys, paths, "--as-of", "2020-01-01", SUM) == []
    today = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    assert _sql(capsys, paths, "--as-of", today, SUM) == now


def test_history_lists_each_version_of_a_slice_with_what_it_changed(revised, capsys, monkeypatch):
    paths, _ = revised
    monkeypatch.setenv("HMO_DATA_DIR", str(paths.root))
    assert main(["history", "mex", "2024-01", "encounter", "--format", "json"]) == 0
    versions = json.loads(capsys.readouterr().out)
    assert [(v["file_name"], v["persons"], v["change"], v["change_pct"]) for v in versions] == [
        ("eventos_2024.csv", 500, None, None), ("eventos_enero_2024_revisado.csv", 777, 277, 55.4)]
    assert {v["status_now"] for v in versions} == {"accepted"}
    # A slice the revision did not touch has one version.
    assert main(["history", "MEX", "2024-02", "ENCOUNTER", "--format", "json"]) == 0
    assert [v["persons"] for v in json.loads(capsys.readouterr().out)] == [40]


def test_as_of_refuses_what_it_cannot_answer(revised, capsys, monkeypatch):
    paths, _ = revised
    monkeypatch.setenv("HMO_DATA_DIR", str(paths.root))
    assert main(["sql", "--as-of", "2024-01-01", "select * from marts.fct_flows"]) == 1
    assert capsys.readouterr().err.strip() == \
        "hmo: with --as-of, write fct_flows without `marts.`: that name is the earlier figures"
    with pytest.raises(QueryRefused):
        as_of_moment("last week")
    assert as_of_moment("2024-03-01") == datetime(2024, 3, 2, tzinfo=timezone.utc)
    assert as_of_moment("2024-03-01 10:30") == datetime(2024, 3, 1, 10, 30, tzinfo=timezone.utc)
    assert main(["history", "MEX", "2024-13", "ENCOUNTER"]) == 1
    assert "period: '2024-13' is not YYYY-MM" in capsys.readouterr().err
