"""Receipts as a statistician reads them: the file's own column names, every detail in
Spanish and English, and for a name that did not resolve, what it may be and what to do.

One real pipeline run (ingest, dbt, Great Expectations) builds the warehouse; the
failures the rules cannot emit yet (an ambiguous name) are inserted into its
validation.rule_failures, and the receipt is read back from it.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pytest

from conftest import STANDARD_HEADER, drop
from expectations.receipts import receipt_data, render_text
from flows import stages
from hmo.settings import Paths
from hmo.warehouse import connect

# Semicolons, Windows-1252 and the Spanish aliases, as Mexico's exports come.
MEX_FILE = "eventos_enero_2024_con_errores.csv"
MEX = """País_Reporte;Periodo;Tipo_Flujo;Punto_Fronterizo;País_Contraparte;Sexo;Edad;Nacionalidad;Cantidad;Estado_Obs
MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;_T;_T;Honduras;24000;A
MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;_T;_T;Haití;634;A
MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;F;_T;_T;12000;A
MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;M;_T;_T;12591;A
MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;_T;_T;Narnia;40;A
MEX;2024-01;ENCOUNTER;TAPACHULA;GTM;_T;_T;Venezuelaa;12;A
MEX;2024-02;ENTRY;_T;_T;F;_T;_T;5;A
MEX;2024-02;ENTRY;_T;_T;F;_T;_T;6;A
MEX;2024-13;ENTRY;_T;_T;_T;_T;GTM;-3;A
MEX;2024-03;ENTRY;_T;_T;_T;_T;GTM;1.200;A
"""
COL_FILE = "Entradas_de_extranjeros_a_Colombia_2024.csv"
COL_PROFILE = "migracion-colombia-entradas-extranjeros"
COL = ("Año,Mes,Nacionalidad,Femenino,Masculino,Indefinido,Total\n"
       "2024,Enero,Venezuela,10,12,0,22\n"
       "2024,Enero,Narnia,1,x,0,2\n")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Paths:
    paths = Paths(tmp_path_factory.mktemp("receipts") / "data")
    paths.ensure()
    drop(paths, "MEX", MEX_FILE, MEX.encode("cp1252"))
    drop(paths, "COL", COL_FILE, COL)
    drop(paths, "CAN", "residentes.csv", STANDARD_HEADER + "\nCAN,2024-01,RESIDENCE_PERMIT,_T,_T,_T,_T,VEN,5,A\n")
    summary = stages.run(paths)
    assert summary.failure is None
    return paths


def written(paths: Paths, country: str, suffix: str) -> str:
    [path] = (paths.outbox / country).glob(f"*{suffix}")
    return path.read_text(encoding="utf-8")


def submission(paths: Paths, file_name: str) -> int:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute("select submission_id from raw.submissions where file_name = ?", [file_name]).fetchone()[0]
    finally:
        con.close()


@contextmanager
def with_failures(paths: Paths, submission_id: int, failures: list[tuple]) -> Iterator[dict]:
    """The receipt `submission_id` gets with these (rule, severity, row, column, value, detail) recorded.

    Inserted in a transaction that is rolled back: the warehouse stays as the run left it.
    """
    con = connect(paths.warehouse)
    try:
        con.execute("begin transaction")
        con.execute("delete from validation.rule_failures where submission_id = ?", [submission_id])
        con.executemany("insert into validation.rule_failures values (?, ?, ?, ?, ?, ?, ?)",
                        [(submission_id, *failure) for failure in failures])
        yield receipt_data(con, submission_id)
        con.execute("rollback")
    finally:
        con.close()


def test_columns_are_named_as_the_file_writes_them(warehouse):
    text = written(warehouse, "MEX", ".rejected.txt")
    assert "columna/column Cantidad [count] · valor/value '-3'" in text
    assert "columna/column Nacionalidad [nationality] · valor/value 'Narnia'" in text
    assert "columna/column Periodo [period] · valor/value '2024-13'" in text
    assert "columna/column count" not in text and "columna/column nationality" not in text
    con = duckdb.connect(str(warehouse.warehouse), read_only=True)
    try:
        [stored] = con.execute("select column_names from raw.submissions where file_name = ?", [MEX_FILE]).fetchone()
    finally:
        con.close()
    assert json.loads(stored)["count"] == "Cantidad" and json.loads(stored)["reporting_country"] == "País_Reporte"
    problem = next(p for p in json.loads(written(warehouse, "MEX", ".rejected.json"))["problems"] if p["rule"] == "R03")
    assert (problem["column"], problem["column_as_written"]) == ("count", "Cantidad")


def test_a_wide_table_names_the_columns_its_counts_come_from_and_a_bad_cell_once(warehouse):
    text = written(warehouse, "COL", ".rejected.txt")
    assert "columna/column Femenino | Masculino | Indefinido | Total [count] · valor/value 'x'" in text
    # Row 3 is four observations (one per sex column): its one unknown name is one problem.
    assert text.count("valor/value 'Narnia'") == 1


def test_a_column_the_profile_fixes_names_the_profile(warehouse):
    with with_failures(warehouse, submission(warehouse, COL_FILE),
                       [("R02", "error", 2, "flow_type", "ENTRADA", None)]) as data:
        text = render_text(data)
    assert (f"columna/column flow_type (fijado por el perfil {COL_PROFILE} / fixed by profile {COL_PROFILE})"
            in text)
    [problem] = data["problems"]
    assert problem["fixed_by_profile"] == COL_PROFILE
    assert "«ENTRADA» no es un código de la lista" in problem["detail_es"]
    assert "RESIDENCE_PERMIT" in problem["detail_en"]  # the codes it could be


def test_nothing_says_none_and_every_detail_is_in_both_languages(warehouse):
    texts, datas = sorted(warehouse.outbox.rglob("*.txt")), sorted(warehouse.outbox.rglob("*.json"))
    assert len(texts) == len(datas) == 3  # one receipt per file dropped: the loops below look at something
    for path in texts:
        assert "None" not in path.read_text(encoding="utf-8"), path.name
    for path in datas:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert "None" not in json.dumps(data, ensure_ascii=False), path.name
        for problem in data["problems"]:
            if problem["rule"] in ("R01", "R02", "R03", "R04", "C02"):
                assert problem["detail_es"] and problem["detail_en"], problem
                assert problem["detail_es"] != problem["detail_en"], problem


def test_a_repeated_key_names_the_first_row_in_both_languages(warehouse):
    text = written(warehouse, "MEX", ".rejected.txt")
    assert "[R04] error · fila/row 9 · columna/column clave/key · valor/value -" in text
    assert "Misma clave que la fila 8." in text and "Same key as row 8." in text
    assert "same key as row" not in text  # as the receipt once said it, in English only


def test_disagreeing_tables_are_named_with_their_totals_and_difference(warehouse):
    text = written(warehouse, "MEX", ".rejected.txt")
    assert ("In 2024-01, ENCOUNTER, border point TAPACHULA, counterpart country GTM: the table by nationality "
            "sums to 24,634; the table by sex (from row 4) to 24,591, difference 43.") in text
    assert ("En 2024-01, ENCOUNTER, punto fronterizo TAPACHULA, país contraparte GTM: el cuadro por nacionalidad "
            "suma 24 634; el cuadro por sexo (desde la fila 4), 24 591, diferencia 43.") in text
    assert "nationality |" not in text


def test_a_close_name_is_offered_with_its_code_and_names_and_the_next_step(warehouse):
    text = written(warehouse, "MEX", ".rejected.txt")
    assert ("Did you mean Venezuela (VEN)? Correct the value and resend the file; or, if «Venezuelaa» is how your "
            "office writes that country, ask the Observatory to add it as an alias "
            '(hmo aliases add MEX "Venezuelaa" VEN).') in text
    assert "¿Quiso decir Venezuela (VEN)? Corrija el valor y reenvíe el archivo" in text
    problem = next(p for p in json.loads(written(warehouse, "MEX", ".rejected.json"))["problems"]
                   if p["value"] == "Venezuelaa")
    assert problem["suggestions"] == [{"code": "VEN", "name_en": "Venezuela", "name_es": "Venezuela"}]


def test_several_close_names_show_each_country_never_a_spelling(warehouse):
    with with_failures(warehouse, submission(warehouse, "residentes.csv"),
                       [("R02", "error", 2, "nationality", "Estados Unidoss", None),
                        ("R02", "error", 3, "nationality", "Rep. Dominicna", None)]) as data:
        text = render_text(data)
    assert "Did you mean United States (USA) / Estados Unidos" in text
    assert "¿Quiso decir Estados Unidos (USA) / United States" in text
    assert "Dominican Republic (DOM) / República Dominicana" in text
    # Two or more candidates: the statistician picks the code.
    assert 'hmo aliases add CAN "Rep. Dominicna" <code>' in text
    assert 'hmo aliases add CAN "Rep. Dominicna" <código>' in text
    assert "dominicana republic" not in text.lower() and "united states america" not in text.lower()
    for problem in data["problems"]:
        assert 1 <= len(problem["suggestions"]) <= 3
        assert all(set(s) == {"code", "name_en", "name_es"} for s in problem["suggestions"])


def test_a_name_close_to_nothing_says_so_and_gives_the_next_step(warehouse):
    text = written(warehouse, "MEX", ".rejected.txt")
    assert "«Narnia» is not close to any country name the Observatory knows." in text
    assert "«Narnia» no se parece a ningún nombre de país que el Observatorio conozca." in text
    assert 'hmo aliases add MEX "Narnia" <code>' in text
    assert "Armenia" not in text and "ARM" not in text


def test_a_name_two_countries_share_asks_for_the_alias_file(warehouse):
    with with_failures(warehouse, submission(warehouse, "residentes.csv"),
                       [("R02", "error", 2, "nationality", "Guyane", "ambiguous:GUF,GUY")]) as data:
        text = render_text(data)
    assert ("«Guyane» is a name of two countries: French Guiana (GUF) or Guyana (GUY). Which one your office "
            "means is recorded in your country's alias file: ask the Observatory to add it "
            '(hmo aliases add CAN "Guyane" GUF or hmo aliases add CAN "Guyane" GUY).') in text
    assert ("«Guyane» es el nombre de dos países: Guayana Francesa (GUF) o Guyana (GUY). Cuál de ellos quiere "
            "decir su oficina se registra en el archivo de alias de su país: pida al Observatorio que lo agregue "
            '(hmo aliases add CAN "Guyane" GUF o hmo aliases add CAN "Guyane" GUY).') in text
    assert "ambiguous" not in text
    [problem] = data["problems"]
    assert [s["code"] for s in problem["suggestions"]] == ["GUF", "GUY"]


def test_file_and_row_problems_are_explained_in_both_languages(warehouse):
    with with_failures(warehouse, submission(warehouse, MEX_FILE), [
        ("S01", "error", None, None, "not a well-formed table: Expected Number of Columns: 10 Found: 11", None),
        ("S02", "error", None, "age", None, None),
        ("S02", "error", None, "count", "Cantidad | count", "named more than once / nombrada más de una vez"),
        ("S03", "error", 2, "reporting_country", "GTM", "MEX"),
        ("R01", "error", 3, "period", None, None),
        ("R03", "error", 4, "count", None, None),
    ]) as data:
        text = render_text(data)
    said = {(p["rule"], p["column"]): (p["detail_es"], p["detail_en"]) for p in data["problems"]}
    assert said["S01", None][0].startswith("No es una tabla bien formada")
    assert said["S02", "age"] == ("Falta la columna age (o edad).", "The column age (or edad) is missing.")
    assert said["S02", "count"] == (
        "La columna count está nombrada más de una vez («Cantidad», «count»): deje una sola.",
        "The column count is named more than once («Cantidad», «count»): keep only one.")
    assert said["S03", "reporting_country"][1] == "The row says «GTM» and the inbox folder is MEX: they must agree."
    assert said["R01", "period"] == ("Vacío: el periodo es obligatorio.", "Empty: the period is required.")
    assert said["R03", "count"][0].startswith("Vacía: solo puede faltar con estado_obs Q")
    assert "[S01] error · fila/row - · columna/column - · valor/value 'not a well-formed table" in text
    assert "None" not in text


def test_each_receipt_links_its_own_countrys_data_docs_and_the_report_links_the_staff_site(warehouse):
    receipt = json.loads(written(warehouse, "MEX", ".rejected.json"))
    assert receipt["data_docs"] == "data_docs/sites/MEX/index.html"
    assert "(Data Docs): data_docs/sites/MEX/index.html" in written(warehouse, "MEX", ".rejected.txt")
    site = warehouse.root / "data_docs" / "sites" / "MEX"
    pages = " ".join(page.read_text(encoding="utf-8") for page in site.rglob("*.html"))
    assert "MEX" in pages and "CAN" not in pages and "COL" not in pages  # never another country's results
    [report] = warehouse.reports.glob("*/report.es.html")
    assert 'href="../../data_docs/sites/staff/index.html"' in report.read_text(encoding="utf-8")
    assert (report.parent / "../../data_docs/sites/staff/index.html").resolve().exists()
