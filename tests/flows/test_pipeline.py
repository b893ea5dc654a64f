"""End to end: real DuckDB, dbt, Great Expectations and Prefect on small files."""
from __future__ import annotations

import json

import duckdb
import pytest

from conftest import STANDARD_HEADER, drop, drop_sample
from flows.pipeline import hmo_run


def query(paths, sql):
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def receipt(paths, country, status):
    [path] = (paths.outbox / country).glob(f"*.{status}.json")
    return json.loads(path.read_text(encoding="utf-8"))


MARGINALS = "\n".join(
    [STANDARD_HEADER]
    + [f"PAN,2024-03,IRREGULAR_TRANSIT,DARIEN,COL,_T,_T,{nat},{n},A" for nat, n in (("VEN", 70), ("HTI", 20), ("_O", 10))]
    + [f"PAN,2024-03,IRREGULAR_TRANSIT,DARIEN,COL,{sex},{age},_T,{n},A"
       for sex, age, n in (("F", "Y_LT18", 15), ("F", "Y_GE18", 30), ("M", "Y_LT18", 20), ("M", "Y_GE18", 36))]
) + "\n"


@pytest.fixture(scope="module")
def first_run(prefect_server, tmp_path_factory):
    from ingest.settings import Paths

    paths = Paths(tmp_path_factory.mktemp("e2e") / "data")
    paths.ensure()
    for country in ("MEX", "GTM", "PAN"):
        drop_sample(paths, country)
    drop(paths, "PAN", "marginales_2024_03.csv", MARGINALS)
    summary = hmo_run(str(paths.root))
    return paths, summary


def test_spanish_latin1_semicolon_file_is_accepted_with_harmonised_codes(first_run):
    paths, summary = first_run
    verdicts = {v.file_name: v.status for v in summary.verdicts}
    assert verdicts["eventos_enero_2024.csv"] == "accepted"
    rows = query(paths, """
        select nationality, sum(count), any_value(route), any_value(origin_scope)
        from marts.fct_flows
        where reporting_country = 'MEX' and sex = '_T' and age = '_T'
        group by nationality order by nationality""")
    assert rows == [
        ("GTM", 230, "NORTH_BOUND", "INTRA_REGIONAL"),
        ("HND", 500, "NORTH_BOUND", "INTRA_REGIONAL"),
        ("HTI", 330, "NORTH_BOUND", "EXTRA_REGIONAL"),
        ("PER", 45, "NORTH_BOUND", "EXTRA_REGIONAL"),
        ("VEN", 920, "NORTH_BOUND", "EXTRA_REGIONAL"),
    ]
    assert receipt(paths, "MEX", "accepted")["periods"] == ["2024-01"]


def test_broken_file_is_rejected_with_every_problem_and_reaches_no_table(first_run):
    paths, summary = first_run
    problems = {(p["rule"], p["row"], p["column"], p["value"]) for p in receipt(paths, "GTM", "rejected")["problems"]}
    assert ("R03", 3, "count", "-5") in problems
    assert ("R02", 4, "nationality", "Narnia") in problems
    assert ("R04", 5, "key", None) in problems
    text = next((paths.outbox / "GTM").glob("*.rejected.txt")).read_text(encoding="utf-8")
    assert "RECHAZADO / REJECTED" in text and "ES: " in text and "EN: " in text
    assert query(paths, "select count(*) from marts.fct_flows where reporting_country = 'GTM'") == [(0,)]
    # What validation copied to check is gone; the failures stay in validation.rule_failures.
    assert query(paths, "select table_name from information_schema.tables where table_name like 'validation%'") == []
    assert query(paths, "select count(*) from validation.rule_failures f join raw.submissions s using (submission_id) "
                        "where s.reporting_country = 'GTM'") == [(3,)]


def test_marginal_tables_load_without_double_counting(first_run):
    paths, _ = first_run
    [(by_nationality, by_sex_age)] = query(paths, """
        select sum(count) filter (where sex = '_T' and age = '_T' and nationality <> '_T'),
               sum(count) filter (where nationality = '_T')
        from marts.fct_flows where reporting_country = 'PAN' and period = date '2024-03-01'""")
    assert by_nationality == 100
    assert by_sex_age == 101


def test_disagreeing_cross_sections_warn_with_c02_but_are_accepted(first_run):
    paths, summary = first_run
    verdict = next(v for v in summary.verdicts if v.file_name == "marginales_2024_03.csv")
    assert verdict.status == "accepted" and verdict.rules_failed == ["C02"]
    data = json.loads(next((paths.outbox / "PAN").glob("marginales*.json")).read_text(encoding="utf-8"))
    assert {p["value"] for p in data["problems"]} == {"100", "101"}


def test_same_file_twice_is_one_submission_and_a_revision_replaces_figures(first_run):
    from harmonise.dbt import DbtProject

    paths, _ = first_run
    # Nothing in the dbt project changed since the first run: the seeds, views and
    # dimensions are not rebuilt, only the facts move.
    assert DbtProject(paths).prepare_validation() is False
    drop_sample(paths, "MEX")
    revised = (
        "pais_reporte;periodo;tipo_flujo;punto_fronterizo;pais_contraparte;sexo;edad;nacionalidad;cantidad\n"
        "MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;_T;_T;Honduras;777\n"
    )
    drop(paths, "MEX", "eventos_enero_2024_revisado.csv", revised.encode("cp1252"))
    summary = hmo_run(str(paths.root))

    duplicates = [r for r in summary.ingested.received if r.duplicate_of]
    assert len(duplicates) == 1
    assert query(paths, "select count(*) from raw.submissions where reporting_country = 'MEX'") == [(2,)]
    assert receipt(paths, "MEX", "duplicate")["duplicate_of"] == duplicates[0].duplicate_of
    assert query(paths, "select nationality, count from marts.fct_flows where reporting_country = 'MEX'") == [("HND", 777)]
    assert DbtProject(paths).build_marts() is False
    # The earlier version stays in the raw layer.
    assert query(paths, "select count(*) from raw.observations o join raw.submissions s using (submission_id) "
                        "where s.file_name = 'eventos_enero_2024.csv'") == [(15,)]


def test_report_and_status_table_show_who_submitted(first_run):
    paths, _ = first_run
    html = (paths.reports / "quality_report.html").read_text(encoding="utf-8")
    assert "GTM" in html and "R03" in html
    statuses = dict(((c, s) for c, s in query(paths, """
        select reporting_country, status from marts.fct_submission_status where period = date '2024-01-01'""")))
    assert statuses["MEX"] == "accepted" and statuses["GTM"] == "rejected" and statuses["ARG"] == "missing"
