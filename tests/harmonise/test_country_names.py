"""Country names resolve as ISO 3166, CLDR and national offices write them.

The names are taken from pycountry and babel here, not from the seed, so a
seed that lost or mangled a name fails these tests.
"""
from __future__ import annotations

import csv
import gettext
import io

import pytest

from flows import stages
from harmonise import country_names
from harmonise.dbt import DbtProject
from hmo.settings import Paths
from hmo.warehouse import connect
from conftest import STANDARD_HEADER, drop

ISO_LANGUAGES = ["en", "es", "fr", "pt", "nl"]
CLDR_LOCALES = ["en", "es", "es_419", "es_MX", "fr", "fr_CA", "pt", "pt_PT", "nl"]

# How national offices write names the sources give otherwise.
WRITTEN_BY_OFFICES = {
    "Comores, Islas": "COM",
    "Confederación Suiza": "CHE",
    "Estado de Eritrea": "ERI",
    "Rep. Dem. del Congo": "COD",
    "Congo, Rep. Dem.": "COD",
    "Congo, Rep.": "COG",
    "Korea, Rep.": "KOR",
    "Corea, Rep. Dem. Pop.": None,  # "Pop." is no abbreviation the key knows: not guessed
    "St. Kitts & Nevis": "KNA",
    "San Vicente & las Granadinas": "VCT",
    "Is. Salomón": "SLB",
    "Bosnia & Herzegovina": "BIH",
    "Côte d’Ivoire": "CIV",
    "COTE D'IVOIRE": "CIV",
    "Guinea–Bissau": "GNB",
    "Timor‐Leste": "TLS",
    "EE. UU.": "USA",
    "EE.UU.": "USA",
    "  venezuela ": "VEN",
    "ven": "VEN",
    "Narnia": None,
}


def iso_names() -> set[tuple[str, str]]:
    import pycountry

    names = set()
    for language in ISO_LANGUAGES:
        translate = (gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language]).gettext
                     if language != "en" else str)
        for country in pycountry.countries:
            for field in ("name", "official_name", "common_name"):
                if getattr(country, field, None):
                    names.add((translate(getattr(country, field)), country.alpha_3))
    return names


def cldr_names() -> set[tuple[str, str]]:
    import pycountry
    from babel import Locale

    names = set()
    for locale in CLDR_LOCALES:
        for alpha2, name in Locale.parse(locale).territories.items():
            country = pycountry.countries.get(alpha_2=alpha2) if len(alpha2) == 2 and alpha2.isalpha() else None
            if country is not None:
                names.add((name, country.alpha_3))
    return names


def standard_file(country: str, names: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    buffer.write(STANDARD_HEADER + "\n")
    for name in names:
        writer.writerow([country, "2024-01", "ENTRY", "_T", "_T", "_T", "_T", name, 1, "A"])
    return buffer.getvalue()


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(reporting country, name as written) -> (code, ambiguous candidates), by the real views."""
    paths = Paths(tmp_path_factory.mktemp("names") / "data")
    paths.ensure()
    written = sorted({name for name, _ in iso_names() | cldr_names()} | set(WRITTEN_BY_OFFICES) | {"Guyane"})
    drop(paths, "COL", "names.csv", standard_file("COL", written))
    drop(paths, "CAN", "names.csv", standard_file("CAN", ["Guyane", "Guyana", "Guyane française"]))
    stages.ingest(paths)
    stages.validate(paths, DbtProject(paths))
    con = connect(paths.warehouse)
    try:
        rows = con.execute(
            """
            select inbox_country, nationality_value, nationality, nationality_ambiguous
            from marts.fct_submitted_observations
            """
        ).fetchall()
        failures = con.execute(
            "select value, detail from marts.fct_rule_failures where rule_id = 'R02' and column_name = 'nationality'"
        ).fetchall()
    finally:
        con.close()
    result = {(country, value): (code, ambiguous) for country, value, code, ambiguous in rows}
    result[("R02", "details")] = dict(failures)  # type: ignore[assignment]
    return result


@pytest.mark.parametrize("source", ["iso", "cldr"])
def test_every_name_of_the_sources_resolves_to_its_own_code(resolved, source):
    names = iso_names() if source == "iso" else cldr_names()
    wrong = {(name, code, resolved[("COL", name.strip())]) for name, code in names
             if resolved[("COL", name.strip())][0] != code}
    assert not wrong


def test_names_as_offices_write_them_resolve_and_nothing_is_guessed(resolved):
    got = {name: resolved[("COL", name.strip())][0] for name in WRITTEN_BY_OFFICES}
    assert got == WRITTEN_BY_OFFICES


def test_a_name_two_countries_share_resolves_only_through_the_countrys_alias_file(resolved):
    assert resolved[("COL", "Guyane")] == (None, "GUF,GUY")
    assert resolved[("R02", "details")]["Guyane"] == "ambiguous:GUF,GUY"
    # IRCC writes Guyane for Guyana: Canada's alias file (ingest/aliases/CAN.csv) says so
    assert resolved[("CAN", "Guyane")] == ("GUY", None)
    assert resolved[("CAN", "Guyane française")] == ("GUF", None)


def test_the_committed_seed_is_what_the_generator_writes():
    assert country_names.SEED.read_text(encoding="utf-8") == country_names.render(), (
        "dbt_project/seeds/country_names.csv is stale: run `python -m harmonise.country_names`")


def test_every_generated_name_says_where_it_comes_from():
    rows = list(csv.DictReader(country_names.SEED.open(encoding="utf-8")))
    assert rows and all(row["sources"] for row in rows)
    assert {"iso3166-1:pt:name", "cldr:nl"} <= {s for row in rows for s in row["sources"].split(";")}
