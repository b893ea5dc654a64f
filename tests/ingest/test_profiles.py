"""Profiles: parsing, choosing, and what their SELECT makes of a country's layout."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingest import transform
from ingest.profiles import STANDARD, ProfileError, choose, load_profiles, parse_profile


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yml"
    path.write_text(text, encoding="utf-8")
    return path


def run(profile, header: list[str], rows: list[list[str]], country: str = "XXX") -> list[tuple]:
    con = duckdb.connect()
    columns = ", ".join(f"c{i} varchar" for i in range(len(header)))
    con.execute(f"create table src (source_row bigint, {columns})")
    for number, row in enumerate(rows, start=2):
        con.execute(f"insert into src values ({number}, {', '.join('?' for _ in row)})", row)
    plan = transform.plan(profile, header, country, "src")
    assert plan.missing == []
    return con.execute(f"select * from ({plan.sql}) order by all").fetchall()


def test_the_bundled_profiles_are_valid():
    names = {p.name for p in load_profiles()}
    assert {"cbp-nationwide-encounters", "migracion-colombia-entradas-extranjeros",
            "ircc-permanent-residents-by-citizenship"} <= names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ncountry: PAN\ncolumns: {nacion: Nac}\n", "'nacion' is not a standard column"),
        ("name: x\ncountry: PAN\nwhatever: 1\n", "unknown keys"),
        ("name: x\ncountry: PAN\ncolumns: {nationality: N}\n", "maps no source for required columns"),
        ("name: x\ncountry: PAN\n: : :\n", "not valid YAML"),
    ],
)
def test_a_broken_profile_is_named_with_the_key_at_fault(tmp_path, text, message):
    with pytest.raises(ProfileError, match=message):
        parse_profile(write(tmp_path, text))


WIDE_MONTHS = """
name: wide-months
country: PAN
period: {year: Año}
wide: {into: month, columns: {Ene.: 1, Feb.: 2}}
columns: {nationality: Nacionalidad}
constants: {flow_type: IRREGULAR_TRANSIT, sex: _T, age: _T}
numbers: {thousands: ".", suppressed: ["--"]}
"""


def test_month_columns_become_rows_with_thousands_and_suppressed_markers(tmp_path):
    profile = parse_profile(write(tmp_path, WIDE_MONTHS))
    rows = run(profile, ["Año", "Nacionalidad", "Ene.", "Feb."], [["2023", "Haití", "1.234", "--"]], "PAN")
    assert rows == [
        (2, "PAN", "2023-01", "IRREGULAR_TRANSIT", "_T", "_T", "_T", "_T", "Haití", "1234", "A"),
        (2, "PAN", "2023-02", "IRREGULAR_TRANSIT", "_T", "_T", "_T", "_T", "Haití", None, "Q"),
    ]


FISCAL = """
name: fiscal
country: USA
period: {fiscal_year: FY, month: Mes}
columns: {nationality: Citizenship, count: N, age: Demo}
constants: {flow_type: ENCOUNTER, sex: _T}
values: {age: {UAC: Y_LT18, "Single Adults": Y_GE18}}
"""


@pytest.mark.parametrize(
    ("fiscal_year", "month", "period"),
    [("2023", "OCT", "2022-10"), ("2023", "DEC", "2022-12"), ("2023", "JAN", "2023-01"),
     ("2023", "SEP", "2023-09"), ("2023", "sept.", "2023-09"), ("2023", "Enerx", "2023 Enerx")],
)
def test_fiscal_years_start_in_october_and_unknown_month_words_pass_through(tmp_path, fiscal_year, month, period):
    profile = parse_profile(write(tmp_path, FISCAL))
    [row] = run(profile, ["FY", "Mes", "Citizenship", "N", "Demo"], [[fiscal_year, month, "MEXICO", "7", "uac"]], "USA")
    assert row[2] == period
    assert row[7] == "Y_LT18"  # value maps ignore case


@pytest.mark.parametrize("word", ["Enero", "ene", "January", "JAN", "janvier", "janv.", "fév.", "août", "déc."])
def test_month_words_in_spanish_english_and_french(tmp_path, word):
    from ingest.profiles import MONTHS, normalise_value

    assert normalise_value(word) in MONTHS


def test_the_standard_layout_wins_unless_a_profile_fits_better():
    [cbp] = [p for p in load_profiles() if p.country == "USA"]
    cbp_header = list(cbp.header)
    standard_header = ["pais_reporte", "periodo", "tipo_flujo", "sexo", "edad", "nacionalidad", "cantidad"]
    assert choose([(STANDARD, cbp_header), (cbp, cbp_header)], "x.csv") is cbp
    assert choose([(STANDARD, standard_header), (cbp, standard_header)], "x.csv") is STANDARD
    # Matched by its file name, a profile still applies when a column was renamed.
    renamed = [h if h != "Citizenship" else "Nationality" for h in cbp_header]
    assert choose([(STANDARD, renamed), (cbp, renamed)], "nationwide-encounters-fy26.csv") is cbp


NOTES_AND_FOOTERS = """
name: with-notes
country: PAN
read:
  skip_lines: 2
  drop_rows: [{column: Año, matches: "^(Fuente|Nota|Año)"}]
period: {year: Año, month: Mes}
columns: {nationality: Nacionalidad, count: Total}
constants: {flow_type: ENTRY, sex: _T, age: _T}
"""


def test_title_lines_repeated_headers_and_footers_are_left_out(tmp_path, paths, monkeypatch):
    from conftest import drop
    from ingest.submissions import ingest_inbox
    from ingest.warehouse import connect

    profile_dir = tmp_path / "profiles"
    profile_dir.mkdir()
    (profile_dir / "PAN-notes.yml").write_text(NOTES_AND_FOOTERS, encoding="utf-8")
    monkeypatch.setattr("ingest.profiles.PROFILES_DIR", profile_dir)
    drop(paths, "PAN", "entradas.csv",
         "Cuadro 3. Entradas\n\nAño;Mes;Nacionalidad;Total\n2024;Enero;Perú;5\n"
         "Año;Mes;Nacionalidad;Total\n2024;Febrero;Haití;7\nFuente: Migración\n")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    rows = con.execute("select source_row, period, nationality, count from raw.observations order by 1").fetchall()
    assert rows == [(4, "2024-01", "Perú", "5"), (6, "2024-02", "Haití", "7")]
    assert con.execute("select profile from raw.submissions").fetchone() == ("with-notes",)
