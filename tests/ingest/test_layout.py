import pytest

from ingest.layout import standard_name


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("reporting_country", "reporting_country"),
        ("País_Reporte", "reporting_country"),
        ("  PERIODO ", "period"),
        ("Tipo Flujo", "flow_type"),
        ("\ufeffcantidad", "count"),
        ("Estado-Obs", "obs_status"),
        ("Nacionalidad", "nationality"),
        ("Citizenship", None),
    ],
)
def test_headers_match_in_english_or_spanish_whatever_case_accents_spacing(header, expected):
    assert standard_name(header) == expected



HARD_CASES = ["Femenino", "  FEMENINO ", "Menores de 12 (0-5)", "Côte d’Ivoire", "São Tomé e Príncipe",
              "e\u0301", "İstanbul", "naïve", "Straße", "Ærø", "ﬁn", "１２", "Ｆｅｍ", "ǅ", "x\u00a0y", "Ñandú",
              "Août", "fév.", "UC / Single Minors", "--", "", "\t\n"]


@pytest.mark.parametrize("text", HARD_CASES)
def test_the_sql_twin_normalises_cells_as_python_normalises_value_maps(text):
    """A profile's value map is normalised in Python and matched against cells in DuckDB."""
    import duckdb

    from ingest.layout import normalise, normalise_sql

    in_duckdb = duckdb.connect().execute(f"select {normalise_sql('?')}", [text]).fetchone()[0]
    assert in_duckdb == normalise(text)
