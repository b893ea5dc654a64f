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

