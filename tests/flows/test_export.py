"""`hmo export`: Parquet and CSV of the published marts that read back as the same rows, filters, labels,
and CSV cells a spreadsheet shows as text."""
from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from conftest import STANDARD_HEADER, drop, drop_sample
from flows import stages
from flows.cli import main
from flows.export import ExportRefused, export
from hmo.settings import Paths

FORMULA = "=cmd|' /C calc'!A0"  # the classic DDE payload: no comma, no quote, so the CSV needs no quoting


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    paths = Paths(tmp_path_factory.mktemp("export") / "data")
    paths.ensure()
    for country in ("PAN", "MEX", "GTM"):
        drop_sample(paths, country)
    # A statistician's value that a spreadsheet would run: it waits in fct_unmapped_values for an alias.
    drop(paths, "CRI", "formula.csv",
         f"{STANDARD_HEADER}\nCRI,2024-01,ENTRY,_T,_T,_T,_T,{FORMULA},5,A\n")
    # Three Haitians among 43 entries: a count the public tables must not show, nor let be subtracted
    drop(paths, "CRI", "small.csv", f"{STANDARD_HEADER}\n" + "".join(
        f"CRI,2024-03,ENTRY,_T,_T,_T,_T,{nationality},{count},A\n"
        for nationality, count in (("HTI", 3), ("VEN", 25), ("NIC", 15), ("_T", 43))))
    stages.run(paths)
    return paths


def _published_rows(paths: Paths, sql: str) -> list[tuple]:
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_parquet_reads_back_as_the_published_rows(published, tmp_path):
    done = export(published, "fct_flows", "parquet", tmp_path / "flows.parquet")
    expected = _published_rows(published, "select * from marts.fct_flows order by all")
    assert done.rows == len(expected) > 0 and done.table == "marts.fct_flows"
    assert duckdb.execute(f"select * from read_parquet('{done.path}') order by all").fetchall() == expected


def test_csv_reads_back_as_the_published_rows_with_the_same_columns(published, tmp_path):
    done = export(published, "marts.fct_flows", "csv", tmp_path / "flows.csv")
    expected = _published_rows(published, "select columns(*)::varchar from marts.fct_flows order by all")
    read = duckdb.execute(f"select * from read_csv('{done.path}', all_varchar = true) order by all").fetchall()
    assert read == expected
    header = next(csv.reader(done.path.open(encoding="utf-8")))
    assert header == [row[0] for row in _published_rows(
        published, "select column_name from information_schema.columns where table_schema = 'marts' "
                   "and table_name = 'fct_flows' order by ordinal_position")]


def test_a_text_cell_that_starts_like_a_formula_is_text_in_csv_and_as_it_was_in_parquet(published, tmp_path):
    as_csv = export(published, "fct_unmapped_values", "csv", tmp_path / "unmapped.csv")
    values = [row["value"] for row in csv.DictReader(as_csv.path.open(encoding="utf-8"))]
    assert "'" + FORMULA in values and FORMULA not in values
    assert not [v for v in values if v[:1] in "=+-@\t\r" and not v.lstrip("+-").isdigit()]
    as_parquet = export(published, "fct_unmapped_values", "parquet", tmp_path / "unmapped.parquet")
    kept = [row[0] for row in duckdb.execute(f"select value from read_parquet('{as_parquet.path}')").fetchall()]
    assert FORMULA in kept


def test_filters_keep_one_country_and_a_range_of_months(published, tmp_path):
    done = export(published, "fct_flows", "parquet", tmp_path / "pan.parquet", period="2024-01:2024-01",
                  country="pan")
    expected = _published_rows(published, "select * from marts.fct_flows where reporting_country = 'PAN' "
                                          "and period = date '2024-01-01' order by all")
    assert 0 < done.rows == len(expected)
    assert duckdb.execute(f"select * from read_parquet('{done.path}') order by all").fetchall() == expected


def test_labels_follow_their_codes_in_the_language_asked(published, tmp_path):
    done = export(published, "fct_flows", "csv", tmp_path / "labels.csv", lang="es")
    rows = list(csv.DictReader(done.path.open(encoding="utf-8")))
    columns = list(rows[0])
    assert columns.index("flow_type_label") == columns.index("flow_type") + 1
    labels = dict(_published_rows(published, "select code, label_es from marts.dim_flow_type"))
    assert all(row["flow_type_label"] == labels[row["flow_type"]] for row in rows)
    panama = {row["reporting_country_label"] for row in rows if row["reporting_country"] == "PAN"}
    assert panama == {"Panamá"}


@pytest.mark.parametrize("arguments, message", [
    ({"table": "raw.observations"},
     "no table 'raw.observations' among the published tables; one of: publication.pub_flows, "
     "publication.pub_release_calendar, marts.dim_age"),
    ({"table": "dim_sex", "period": "2024-01"}, "--period: this table has no period column"),
    ({"period": "2024-13"}, "--period: '2024-13' is not YYYY-MM"),
    ({"period": "2024-05:2024-01"}, "--period: '2024-05:2024-01' ends before it starts"),
    ({"country": "Panama"}, "--country: 'Panama' is not an ISO 3166 alpha-3 code"),
])
def test_an_export_that_cannot_be_made_is_one_clear_error_and_writes_nothing(published, tmp_path, arguments,
                                                                              message):
    asked = {"table": "fct_flows", **arguments}
    with pytest.raises(ExportRefused) as refused:
        export(published, asked.pop("table"), "csv", tmp_path / "out.csv", **asked)
    assert str(refused.value).startswith(message)
    assert not list(tmp_path.iterdir())


def test_the_command_writes_beside_the_analyst_and_does_not_overwrite_without_force(published, tmp_path,
                                                                                     monkeypatch, capsys):
    monkeypatch.setenv("HMO_DATA_DIR", str(published.root))
    monkeypatch.chdir(tmp_path)
    assert main(["export", "fct_flows", "--format", "csv", "--country", "MEX"]) == 0
    out = capsys.readouterr().out
    written = Path(tmp_path / "fct_flows-MEX.csv")
    first, second = out.splitlines()
    assert written.exists() and first.startswith("exported ") and first.endswith(f"to {written}")
    assert second.endswith(str(tmp_path / "fct_flows-MEX.metadata.json"))
    before = written.read_bytes()
    assert main(["export", "fct_flows", "--format", "csv", "--country", "MEX"]) == 1
    assert capsys.readouterr().err.strip() == \
        f"hmo: {written} exists: give another --output, or --force to replace it"
    assert written.read_bytes() == before
    assert main(["export", "fct_flows", "--format", "csv", "--country", "MEX", "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fct_flows-MEX.csv", "fct_flows-MEX.metadata.json"]  # no .partial


def test_sdmx_csv_and_its_structure_read_back_with_every_code_in_its_code_list(published, tmp_path):
    from pysdmx.io import read_sdmx

    from flows import sdmx

    done = export(published, "fct_flows", "sdmx-csv", tmp_path / "flows.csv", country="PAN")
    structure_file = sdmx.structure_path(done.path)
    assert structure_file.name == "flows.structure.xml" and structure_file.exists()
    # pysdmx validates the structure message against the SDMX-ML 3.0 schema as it reads it.
    structures = read_sdmx(str(structure_file)).structures
    codelists = {s.id: {code.id for code in s.items} for s in structures if type(s).__name__ == "Codelist"}
    [dsd] = [s for s in structures if type(s).__name__ == "DataStructureDefinition"]
    assert dsd.id == sdmx.DSD_ID
    [dataset] = read_sdmx(str(done.path)).data
    frame = dataset.data
    expected = _published_rows(published, "select count(*), sum(count) from marts.fct_flows "
                                          "where reporting_country = 'PAN'")[0]
    assert (len(frame), int(frame["OBS_VALUE"].astype(int).sum())) == expected == (done.rows, expected[1])
    # The library reads a code outside its list back without complaint: each one is checked here.
    for column, component, spec in [*sdmx.DIMENSIONS, *sdmx.ATTRIBUTES]:
        if spec is not None:
            assert set(frame[component]) <= codelists[spec[0]], component
    assert set(frame["TIME_PERIOD"]) == {"2024-01", "2024-02"}
    with pytest.raises(ExportRefused, match="only fct_flows and pub_flows have an SDMX structure"):
        export(published, "dim_sex", "sdmx-csv", tmp_path / "sex.csv")


def test_the_public_table_exports_with_its_suppressed_cells_as_sdmx_status_q(published, tmp_path):
    from pysdmx.io import read_sdmx

    done = export(published, "pub_flows", "sdmx-csv", tmp_path / "public.csv", country="CRI", period="2024-03")
    assert done.table == "publication.pub_flows"
    [dataset] = read_sdmx(str(done.path)).data
    shown = {row["CITIZENSHIP"]: (row["OBS_VALUE"], row["OBS_STATUS"]) for _, row in dataset.data.iterrows()}
    # Haiti's 3 is hidden, and so is a second nationality: else 43 - 25 - 15 would give it back
    assert shown["HTI"][1] == "Q" and [status for _, status in shown.values()].count("Q") == 2
    assert not any(str(value).strip() in {"1", "2", "3", "4"} for value, _ in shown.values())
    analysts = export(published, "marts.fct_flows", "csv", tmp_path / "internal.csv", country="CRI", period="2024-03")
    assert "HTI" in analysts.path.read_text(encoding="utf-8") and ",3," in analysts.path.read_text(encoding="utf-8")


def test_flows_export_with_their_reference_metadata_in_both_languages(published, tmp_path):
    from pysdmx.io import read_sdmx

    done = export(published, "pub_flows", "csv", tmp_path / "pub.csv")
    assert done.metadata == tmp_path / "pub.metadata.json"
    exported = {(country, flow_type) for country, flow_type in duckdb.execute(
        f"select distinct reporting_country, flow_type from read_csv('{done.path}')").fetchall()}
    reports = {report.id: report for report in read_sdmx(done.metadata).get_reports()}
    assert set(reports) == {f"{country}_{flow_type}" for country, flow_type in exported}
    mexico = {attribute.id: attribute.value for attribute in reports["MEX_ENCOUNTER"].attributes}
    # The country's own entry replaces the general one: Mexico counts events, not persons.
    assert mexico["UNIT_MEASURE"]["es"].startswith("Eventos de personas presentadas")
    assert mexico["UNIT_MEASURE"]["en"].startswith("Events of persons presented")
    assert "threshold" in mexico["CONF"]["en"] and "umbral" in mexico["CONF"]["es"]
    assert mexico["STAT_PRES"]["en"].startswith("Apprehensions, expulsions and inadmissions")
    panama = {attribute.id: attribute.value for attribute in reports["PAN_IRREGULAR_TRANSIT"].attributes}
    assert panama["REPORTING_COUNTRY"] == "PAN" and "Darién" in panama["COVERAGE"]["es"]
    assert reports["PAN_IRREGULAR_TRANSIT"].reportingBegin == "2024-01"


def test_the_metadata_covers_only_what_was_exported(published, tmp_path):
    from pysdmx.io import read_sdmx

    done = export(published, "fct_flows", "sdmx-csv", tmp_path / "mex-sdmx.csv", country="MEX")
    [report] = read_sdmx(done.metadata).get_reports()
    assert report.id == "MEX_ENCOUNTER" and done.metadata == tmp_path / "mex-sdmx.metadata.json"
    nothing = export(published, "fct_flows", "parquet", tmp_path / "none.parquet", period="1999-01")
    assert nothing.rows == 0 and nothing.metadata is None and not (tmp_path / "none.metadata.json").exists()
