"""The three real agency exports, through their profiles, reproduce the published totals.

Runs the pipeline's stages (real DuckDB, dbt and GX) without Prefect; the flow
itself is covered by test_pipeline.py.
"""
from __future__ import annotations

import csv
import io
import json
import shutil

import duckdb
import pytest

from flows import stages
from publication.suppression import Suppression, attack, build_table, exposed, primary
from hmo.settings import PROJECT_ROOT, Paths

REAL = PROJECT_ROOT.parent / "shared" / "real"
CBP = "nationwide-encounters-fy22-fy25-state.csv"
COL = "Entradas_de_extranjeros_a_Colombia.csv"
IRCC = "ODP-PR-Citz.csv"

pytestmark = pytest.mark.skipif(not (REAL / CBP).exists(), reason="../shared/real is not beside the checkout")


def cbp_variant(change) -> str:
    rows = list(csv.reader(io.StringIO((REAL / CBP).read_text(encoding="utf-8"))))[:300]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(change(rows))
    return out.getvalue()


def renamed_header(rows):
    rows[0] = ["Nationality" if h == "Citizenship" else h for h in rows[0]]
    return rows


def missing_column(rows):
    drop = rows[0].index("Demographic")
    return [[v for i, v in enumerate(r) if i != drop] for r in rows]


def unknown_month(rows):
    rows[5][2] = "APRX"
    return rows


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    paths = Paths(tmp_path_factory.mktemp("real") / "data")
    paths.ensure()
    for country, name in (("USA", CBP), ("COL", COL), ("CAN", IRCC)):
        (paths.inbox / country).mkdir(exist_ok=True)
        shutil.copyfile(REAL / name, paths.inbox / country / name)
    for name, change in (("renamed", renamed_header), ("missing", missing_column), ("month", unknown_month)):
        (paths.inbox / "USA" / f"nationwide-encounters-{name}.csv").write_text(cbp_variant(change), encoding="utf-8")
    verdicts = stages.run(paths).verdicts
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    yield paths, {v.file_name: v for v in verdicts}, con
    con.close()


def total(con, sql: str) -> int:
    return con.execute(f"select sum(count) from marts.fct_flows where {sql}").fetchone()[0]


def test_cbp_southwest_and_northern_totals(warehouse):
    _, verdicts, con = warehouse
    assert verdicts[CBP].status == "accepted"
    fiscal = "period between date '{0}-10-01' and date '{1}-09-01'"
    southwest = "reporting_country = 'USA' and border_point = 'SOUTHWEST' and "
    assert total(con, southwest + fiscal.format(2021, 2022)) == 2_378_944
    assert total(con, southwest + fiscal.format(2022, 2023)) == 2_475_669
    assert total(con, southwest + fiscal.format(2023, 2024)) == 2_135_005
    assert total(con, "reporting_country = 'USA' and border_point = 'NORTHERN' and " + fiscal.format(2022, 2023)) == 189_402


def test_cbp_title_8_and_title_42_add_up_to_the_fy2023_southwest_total(warehouse):
    # Title of Authority is not a standard dimension, so the split is checked
    # where it still exists: the archived original.
    paths, _, _ = warehouse
    [archived] = [p for p in (paths.archive / "USA").iterdir() if p.stat().st_size == (REAL / CBP).stat().st_size]
    split = dict(duckdb.execute(
        """select "Title of Authority", sum("Encounter Count") from read_csv(?)
           where "Land Border Region" = 'Southwest Land Border' and "Fiscal Year" = 2023 group by 1""",
        [str(archived)]).fetchall())
    assert split == {"Title 8": 1_911_289, "Title 42": 564_380}


def test_cbp_routes_follow_the_land_border_except_extracontinental(warehouse):
    _, _, con = warehouse
    routes = dict(con.execute(
        """select border_point || ' ' || (nationality in (select country_code from marts.dim_country
                                                           where region = 'Americas')), list(distinct route)
           from marts.fct_flows where reporting_country = 'USA' and nationality not in ('_O', '_U')
           group by 1""").fetchall())
    assert routes["SOUTHWEST true"] == ["NORTH_BOUND"]
    assert routes["NORTHERN true"] == ["SOUTH_BOUND"]
    assert routes["SOUTHWEST false"] == ["EXTRACONTINENTAL"]
    assert routes["NORTHERN false"] == ["EXTRACONTINENTAL"]


def test_colombia_yearly_entries(warehouse):
    _, verdicts, con = warehouse
    assert verdicts[COL].status == "accepted"
    yearly = dict(con.execute(
        """select year(period), sum(count) from marts.fct_flows
           where reporting_country = 'COL' and sex = '_T' group by 1""").fetchall())
    assert yearly == {2012: 1_698_366, 2013: 1_832_098, 2014: 2_051_918, 2015: 2_387_463,
                      2016: 2_699_257, 2017: 3_344_816, 2018: 2_080_891}


def test_canada_2023_published_cells_and_suppressed_cells(warehouse):
    _, verdicts, con = warehouse
    assert verdicts[IRCC].status == "accepted"
    published, suppressed = con.execute(
        """select sum(count), count(*) filter (where obs_status = 'Q' and count is null)
           from marts.fct_flows where reporting_country = 'CAN' and year(period) = 2023""").fetchone()
    assert (published, suppressed) == (471_040, 310)


@pytest.mark.parametrize(
    ("name", "rule", "column", "value"),
    [
        ("renamed", "S02", "nationality", "Citizenship"),
        ("missing", "S02", "age", "Demographic"),
        ("month", "R01", "period", "2022 APRX"),
    ],
)
def test_a_changed_layout_is_rejected_saying_what_changed(warehouse, name, rule, column, value):
    paths, verdicts, _ = warehouse
    assert verdicts[f"nationwide-encounters-{name}.csv"].status == "rejected"
    [receipt] = (paths.outbox / "USA").glob(f"nationwide-encounters-{name}.csv.*.json")
    problems = json.loads(receipt.read_text(encoding="utf-8"))["problems"]
    assert any((p["rule"], p["column"], p["value"]) == (rule, column, value) for p in problems)
    assert all(p["message_es"] and p["message_en"] for p in problems)


def test_published_tables_show_no_small_count_and_the_attacker_recovers_no_suppressed_one(warehouse):
    _, _, con = warehouse
    cells = con.execute(
        """select f.*, p.count as published, p.obs_status as published_status
           from marts.fct_flows as f
           join publication.pub_flows as p
             using (reporting_country, period, flow_type, border_point, counterpart_country, sex, age, nationality)
           where f.count is not null""").df()
    assert len(cells) == con.execute("select count(*) from marts.fct_flows where count is not null").fetchone()[0]
    assert not cells["published"].between(1, 4).any()
    ages = dict(con.execute("select code, parent from seeds.cl_age").fetchall())
    attacked = 0
    for _, table_cells in cells.groupby(["reporting_country", "period", "flow_type"]):
        table = build_table(table_cells, {"age": ages})
        hidden = table_cells["published"].isna().to_numpy()
        sensitive = primary(table, 5)
        assert not (sensitive & ~hidden).any()
        pattern = Suppression(hidden, sensitive, 0)
        assert not exposed(table, pattern, attack(table, hidden), 5).any()
        attacked += int(hidden.sum())
    assert attacked > 1_000
    print(f"attacked {attacked} suppressed cells in {cells.groupby(['reporting_country', 'period', 'flow_type']).ngroups}"
          " tables: all held")
    # IRCC's "--" stay what the source made them (no count, status Q), and are the only ones of 2023: IRCC
    # already hides counts below 5, and its totals exclude them, so there is nothing more to suppress
    assert con.execute("""select count(*) from publication.pub_flows
                          where reporting_country = 'CAN' and year(period) = 2023
                            and obs_status = 'Q' and count is null""").fetchone()[0] == 310


def test_an_export_across_the_end_of_title_42_carries_the_break_in_series_and_one_after_it_too(warehouse, tmp_path):
    from pysdmx.io import read_sdmx

    from flows.export import export

    paths, _, _ = warehouse
    for period in ("2023-01:2023-12", "2024-01"):
        done = export(paths, "pub_flows", "parquet", tmp_path / f"usa-{period[:4]}.parquet", period=period,
                      country="USA")
        [report] = read_sdmx(done.metadata).get_reports()
        values = {attribute.id: attribute.value for attribute in report.attributes}
        assert "Title 42" in values["COMPARABILITY"]["en"] and "Título 42" in values["COMPARABILITY"]["es"]
        assert values["UNIT_MEASURE"]["en"].startswith("Events")
    done = export(paths, "fct_flows", "csv", tmp_path / "can.csv", period="2023-01:2023-12", country="CAN")
    [report] = read_sdmx(done.metadata).get_reports()
    values = {attribute.id: attribute.value for attribute in report.attributes}
    assert "COMPARABILITY" not in values and "--" in values["ACCURACY"]["en"]
