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


BASE = "name: x\ncountry: PAN\n"
COMPLETE = BASE + "columns: {nationality: N, count: C}\nconstants: {flow_type: ENTRY, sex: _T, age: _T}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "columns: {nacion: Nac}\n", "p.yml: columns.nacion: 'nacion' is not a standard column"),
        (BASE + "whatever: 1\n", "p.yml: whatever: unknown key; allowed: name, country, description, match,"),
        (COMPLETE + "period: {yaer: Año, month: Mes}\n",
         "p.yml: period.yaer: unknown key; allowed: column, year, fiscal_year, month, year_from,"),
        (COMPLETE + "period: {year_from: {file: x}, month: Mes}\n",
         "p.yml: period.year_from.file: unknown key; allowed: file_name, title, line"),
        (COMPLETE + "read: {skip_lines: three}\n", "p.yml: read.skip_lines: expected a whole number, got 'three'"),
        (COMPLETE + "read: {drop_rows: [{column: A, matches: 1}, {colum: B}]}\n",
         r"p.yml: read.drop_rows\[1\].colum: unknown key"),
        (COMPLETE + "match: {header: Año}\n", "p.yml: match.header: expected a list, got 'Año'"),
        (COMPLETE + "sum_duplicates: sometimes\n", "p.yml: sum_duplicates: expected true or false"),
        (COMPLETE + "values: {sex: {No: M}}\n", "p.yml: values.sex.False: expected text, got False"),
        (BASE + "columns: {count: C}\nconstants: {flow_type: ENTRY, age: _T}\n"
                "period: {column: P}\nwide: {into: nacion, columns: {A: x}}\n",
         "p.yml: wide.into: 'nacion' is not a standard column"),
        (COMPLETE + "period: {year: Año}\nwide: {into: month, columns: {Ene.: 1, Trece: 13}}\n",
         "p.yml: wide.columns.Trece: '13' is not a month"),
        (BASE + "columns: {nationality: N}\n", "p.yml: maps no source for required columns"),
        (BASE + ": : :\n", "p.yml: not valid YAML"),
        ("country: PAN\n", "p.yml: name: required"),
        ("name: x\ncountry: PNA\n", "p.yml: country: 'PNA' is not the ISO3 code of a member country"),
        (COMPLETE + "read: {encoding: utf-16}\n", "p.yml: read.encoding: 'utf-16' is not one of"),
        (COMPLETE + "period: {fiscal_year: FY, month: Mes}\n",
         "p.yml: period.fiscal_year_start_month: required with `fiscal_year`"),
        (COMPLETE + "period: {year: Año, month: Mes, fiscal_year_start_month: 10}\n",
         "p.yml: period.fiscal_year_start_month: applies to `fiscal_year` and `fiscal_year_from` only"),
        (COMPLETE + "period: {year: Año, year_from: {file_name: '(?P<year>[0-9]{4})'}, month: Mes}\n",
         "p.yml: period: needs one of .* \\(it gives year, year_from\\)"),
        (COMPLETE + "period: {year_from: {file_name: '([0-9]{4})'}, month: Mes}\n",
         "p.yml: period.year_from.file_name: needs a named group `year`"),
        (COMPLETE + "period: {year_from: {title: 'Año (?P<year>[0-9]{4})'}, month: Mes}\n",
         "p.yml: period.year_from.title: a title is a line before the header: set read.skip_lines"),
        (COMPLETE + "read: {skip_lines: 2}\nperiod: {year_from: {title: '(?P<year>[0-9]{4})', line: 3}, month: Mes}\n",
         r"p.yml: period.year_from.line: must be a title line, 1 to read.skip_lines \(2\)"),
    ],
)
def test_a_broken_profile_is_named_with_the_key_at_fault(tmp_path, text, message):
    with pytest.raises(ProfileError, match=f"^{message}"):
        parse_profile(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (COMPLETE.replace("flow_type: ENTRY,", "flow_type: ENTRY, period: 2023-01,"), "constants.period"),
        (COMPLETE + "period: {year: Año, month: Mes}\nvalues: {period: {'2023 1': 2023-01}}\n", "values.period"),
        (BASE + "columns: {nationality: N}\nconstants: {flow_type: ENTRY, sex: _T, age: _T}\n"
                "wide: {into: period, columns: {Enero: 2023-01, Febrero: 2023-02}}\n", "wide.into"),
        (COMPLETE + "period: {year: 2023, month: Mes}\n", "period.year"),
    ],
)
def test_a_profile_never_fixes_the_year(tmp_path, text, key):
    # Such a profile loaded next year's file, whose header is the same, as this year's.
    with pytest.raises(ProfileError, match=rf"^p.yml: {key}: .*(never fixes|is a year, not a column)"):
        parse_profile(write(tmp_path, text))


def test_the_profile_folder_can_be_pointed_elsewhere(tmp_path, monkeypatch):
    (tmp_path / "PAN-x.yml").write_text(COMPLETE + "period: {column: P}\n", encoding="utf-8")
    monkeypatch.setenv("HMO_PROFILES_DIR", str(tmp_path))
    assert [p.name for p in load_profiles()] == ["x"]


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
period: {fiscal_year: FY, month: Mes, fiscal_year_start_month: 10}
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
    from ingest.layout import normalise
    from ingest.profiles import MONTHS

    assert normalise(word) in MONTHS


def test_the_standard_layout_wins_unless_a_profile_fits_better():
    [cbp] = [p for p in load_profiles() if p.country == "USA"]
    cbp_header = list(cbp.header)
    name = "nationwide-encounters-fy26.csv"
    standard_header = ["pais_reporte", "periodo", "tipo_flujo", "sexo", "edad", "nacionalidad", "cantidad"]
    assert choose([(STANDARD, cbp_header), (cbp, cbp_header)], name) is cbp
    assert choose([(STANDARD, standard_header), (cbp, standard_header)], name) is STANDARD
    # Matched by its file name, a profile still applies when a column was renamed (S02 then names it).
    renamed = [h if h != "Citizenship" else "Nationality" for h in cbp_header]
    assert choose([(STANDARD, renamed), (cbp, renamed)], name) is cbp


def test_a_profile_that_gives_a_file_name_and_a_header_needs_both():
    [cbp] = [p for p in load_profiles() if p.country == "USA"]
    # The header alone once sufficed: a file of another year under a profile meant for one.
    assert choose([(STANDARD, list(cbp.header)), (cbp, list(cbp.header))], "encounters-2024.csv") is STANDARD
    assert choose([(STANDARD, ["a", "b"]), (cbp, ["a", "b"])], "nationwide-encounters-fy26.csv") is STANDARD


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
    from hmo.warehouse import connect

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


YEAR_FROM = """
name: darien
country: PAN
match: {file_name: "transitos_*.csv"}
read: {skip_lines: 2}
period:
  year_from: {file_name: "(?P<year>20[0-9]{2})", title: "año (?P<year>[0-9]{4})", line: 1}
wide: {into: month, columns: {Enero: 1, Febrero: 2, Marzo: 3}, total: Total}
columns: {nationality: Nacionalidad}
constants: {flow_type: IRREGULAR_TRANSIT, sex: _T, age: _T}
numbers: {thousands: ".", suppressed: ["--"]}
"""
HEADER = ["Nacionalidad", "Enero", "Febrero", "Marzo", "Total"]


def test_the_year_comes_from_the_file_name_and_the_title(tmp_path):
    from ingest.profiles import YearNotFound

    profile = parse_profile(write(tmp_path, YEAR_FROM))
    title = ["Tránsitos irregulares por Darién, AÑO 2024;;;;", ""]
    assert profile.year_of("transitos_2024.csv", title) == "2024"
    with pytest.raises(YearNotFound) as said_2023:
        profile.year_of("transitos_2024.csv", ["Tránsitos irregulares por Darién, año 2023", ""])
    assert str(said_2023.value) == (
        "el nombre del archivo dice 2024 y el título (línea 1) dice 2023: el archivo no se carga como ninguno "
        "de los dos años / the file name says 2024 and the title (line 1) says 2023: the file is loaded as "
        "neither year")
    with pytest.raises(YearNotFound, match="^el nombre del archivo no dice el año: el perfil p.yml .* / "
                                           "the file name does not give the year"):
        profile.year_of("transitos_enero.csv", title)
    with pytest.raises(YearNotFound, match="^la línea 1 no dice el año.* / line 1 does not give the year"):
        profile.year_of("transitos_2024.csv", ["", "Tránsitos, año 2024"])  # the title is not where it says


def test_a_year_from_the_name_gives_the_period_of_month_columns(tmp_path):
    profile = parse_profile(write(tmp_path, YEAR_FROM))
    con = duckdb.connect()
    con.execute("create table src as select 4::bigint as source_row, 'VEN' as c0, '1.000' as c1, '--' as c2, "
                "'3' as c3, '1.010' as c4")
    plan = transform.plan(profile, HEADER, "PAN", "src", year="2024")
    assert con.execute(f"select period, count, obs_status from ({plan.sql}) order by 1").fetchall() == [
        ("2024-01", "1000", "A"), ("2024-02", None, "Q"), ("2024-03", "3", "A")]
    with pytest.raises(ValueError, match="needs it"):  # never a year made up
        transform.plan(profile, HEADER, "PAN", "src")


FISCAL_FROM_NAME = """
name: fy
country: USA
period: {fiscal_year_from: {file_name: "FY(?P<year>[0-9]{4})"}, month: Month, fiscal_year_start_month: 10}
columns: {nationality: Citizenship, count: N}
constants: {flow_type: ENCOUNTER, sex: _T, age: _T}
"""


def test_a_fiscal_year_from_the_file_name(tmp_path):
    profile = parse_profile(write(tmp_path, FISCAL_FROM_NAME))
    year = profile.year_of("encounters-fy2024.csv", [])
    con = duckdb.connect()
    con.execute("create table src as select * from (values (2, 'OCT', 'MEXICO', '5'), (3, 'JAN', 'MEXICO', '6')) "
                "as t(source_row, c0, c1, c2)")
    plan = transform.plan(profile, ["Month", "Citizenship", "N"], "USA", "src", year=year)
    assert con.execute(f"select period from ({plan.sql}) order by 1").fetchall() == [("2023-10",), ("2024-01",)]


def month_total_failures(profile, rows: list[list[str]]) -> list[tuple]:
    con = duckdb.connect()
    columns = ", ".join(f"c{i} varchar" for i in range(len(HEADER)))
    con.execute(f"create table src (source_row bigint, {columns})")
    for number, row in enumerate(rows, start=4):
        con.execute(f"insert into src values ({number}, {', '.join('?' for _ in row)})", row)
    plan = transform.plan(profile, HEADER, "PAN", "src", year="2024")
    return con.execute(f"select * from ({plan.month_totals}) order by source_row").fetchall()


def test_month_columns_that_do_not_add_up_to_their_total_are_c01_failures_naming_the_row(tmp_path):
    profile = parse_profile(write(tmp_path, YEAR_FROM))
    assert month_total_failures(profile, [
        ["VEN", "1.000", "20", "3", "1.023"],  # adds up, thousands and all
        ["HTI", "10", "20", "30", "61"],  # does not
        ["ECU", "10", "--", "30", "45"],  # a suppressed month: the total cannot be checked, only bounded
        ["COL", "10", "--", "30", "35"],  # and the given months already exceed it
        ["PER", "1", "2", "3", ""],  # no total given
        ["CHN", "1", "2", "3", "seis"],  # a total that is no number
    ]) == [
        ("C01", "error", 5, "period", "61", "60"),
        ("C01", "error", 7, "period", "35", "40"),
        ("C01", "error", 9, "period", "seis", "6"),
    ]
