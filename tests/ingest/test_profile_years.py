"""A country layout whose year is only in its file name and title, through the real pipeline.

One profile serves every year: the year comes from the file's name and title,
a file whose name and title disagree is refused (S01), and month columns that
do not add up to their total column are rejected naming the row (C01).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import drop
from flows import stages
from hmo.settings import Paths

PROFILE = """
name: darien-transitos
country: PAN
description: Irregular transits through the Darién by nationality, a column per month; the year in the title.
match:
  file_name: "transitos_*.csv"
  header: [Nacionalidad, Enero, Febrero, Marzo, Total]
read:
  skip_lines: 2
period:
  year_from: {file_name: "_(?P<year>20[0-9]{2})", title: "año (?P<year>[0-9]{4})", line: 1}
wide:
  into: month
  columns: {Enero: 1, Febrero: 2, Marzo: 3}
  total: Total
columns:
  nationality: Nacionalidad
constants:
  flow_type: IRREGULAR_TRANSIT
  border_point: DARIEN
  counterpart_country: COL
  sex: _T
  age: _T
numbers:
  thousands: "."
  suppressed: ["--"]
"""

HEADER = "Nacionalidad;Enero;Febrero;Marzo;Total"


def transits(year: int, *rows: str) -> str:
    return "\n".join([f"Tránsitos irregulares por el Darién, año {year};;;;", "Fuente: SNM;;;;", HEADER, *rows]) + "\n"


FILES = {
    "transitos_2024.csv": transits(2024, "VEN;1.000;800;700;2.500", "HTI;200;150;--;350"),
    "transitos_2024_revisado.csv": transits(2023, "VEN;1.000;800;700;2.500"),
    "transitos_2024_marzo.csv": transits(2024, "VEN;1.000;800;700;2.500", "HTI;200;150;10;350"),
    "transitos_enero.csv": transits(2024, "VEN;1.000;800;700;2.500"),
}


@pytest.fixture(scope="module")
def darien(tmp_path_factory):
    root = tmp_path_factory.mktemp("darien")
    profiles = root / "profiles"
    profiles.mkdir()
    (profiles / "PAN-darien-transitos.yml").write_text(PROFILE, encoding="utf-8")
    paths = Paths(root / "data")
    paths.ensure()
    for name, text in FILES.items():
        drop(paths, "PAN", name, text)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HMO_PROFILES_DIR", str(profiles))
        verdicts = {v.file_name: v for v in stages.run(paths).verdicts}
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    yield paths, verdicts, con
    con.close()


def receipt(paths: Paths, name: str) -> dict:
    [path] = (paths.outbox / "PAN").glob(f"{name}.*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_2024_file_loads_as_2024_from_its_name_and_title(darien):
    paths, verdicts, con = darien
    assert verdicts["transitos_2024.csv"].status == "accepted"
    assert receipt(paths, "transitos_2024.csv")["periods"] == ["2024-01", "2024-02", "2024-03"]
    assert con.execute(
        """select strftime(period, '%Y-%m'), nationality, count, obs_status from marts.fct_flows
           where reporting_country = 'PAN' order by all""").fetchall() == [
        ("2024-01", "HTI", 200, "A"), ("2024-01", "VEN", 1000, "A"),
        ("2024-02", "HTI", 150, "A"), ("2024-02", "VEN", 800, "A"),
        ("2024-03", "HTI", None, "Q"), ("2024-03", "VEN", 700, "A"),
    ]


def test_a_title_that_says_another_year_than_the_name_is_refused(darien):
    paths, verdicts, _ = darien
    assert verdicts["transitos_2024_revisado.csv"].status == "rejected"
    [problem] = receipt(paths, "transitos_2024_revisado.csv")["problems"]
    assert (problem["rule"], problem["row"]) == ("S01", None)
    assert problem["value"] == (
        "el nombre del archivo dice 2024 y el título (línea 1) dice 2023: el archivo no se carga como ninguno "
        "de los dos años / the file name says 2024 and the title (line 1) says 2023: the file is loaded as "
        "neither year")


def test_a_file_name_without_the_year_is_refused_saying_where_it_was_looked_for(darien):
    paths, verdicts, _ = darien
    assert verdicts["transitos_enero.csv"].status == "rejected"
    [problem] = receipt(paths, "transitos_enero.csv")["problems"]
    assert problem["rule"] == "S01"
    assert problem["value"].startswith("el nombre del archivo no dice el año: el perfil PAN-darien-transitos.yml")
    assert "/ the file name does not give the year: profile PAN-darien-transitos.yml looks for it with the " \
           "pattern _(?P<year>20[0-9]{2})" in problem["value"]


def test_months_that_do_not_add_up_to_the_total_are_rejected_naming_the_row(darien):
    paths, verdicts, con = darien
    assert verdicts["transitos_2024_marzo.csv"].status == "rejected"
    [problem] = receipt(paths, "transitos_2024_marzo.csv")["problems"]
    assert (problem["rule"], problem["row"], problem["column"], problem["value"]) == ("C01", 5, "period", "350")
    assert problem["message_en"].startswith("The parts do not add up to the total")
    assert con.execute(
        """select detail from marts.fct_rule_failures
           where file_name = 'transitos_2024_marzo.csv'""").fetchall() == [("360",)]  # the months' sum
    # Nothing of the rejected file reached the published tables.
    assert con.execute("select count(*) from marts.fct_flows where period = date '2024-03-01' "
                       "and nationality = 'HTI' and count is not null").fetchone() == (0,)


def test_hmo_check_names_a_broken_profile_in_one_line(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "PAN-darien-transitos.yml").write_text(
        PROFILE.replace("  year_from:", "  yaer_from:"), encoding="utf-8")
    export = tmp_path / "transitos_2024.csv"
    export.write_text(FILES["transitos_2024.csv"], encoding="utf-8")
    hmo = Path(sys.executable).with_name("hmo")
    done = subprocess.run([str(hmo), "check", str(export), "--country", "PAN"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HMO_DATA_DIR": str(tmp_path / "data"),
                               "HMO_PROFILES_DIR": str(profiles)}, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    # The error is the last line (a progress line of `hmo check` may come before it).
    assert done.stderr.splitlines()[-1] == (
        "hmo: PAN-darien-transitos.yml: period.yaer_from: unknown key; allowed: column, year, fiscal_year, month, "
        "year_from, fiscal_year_from, fiscal_year_start_month")
