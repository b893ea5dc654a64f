from pathlib import Path

import pytest

from ingest.sniff import UnreadableText, detect_encoding, sniff, to_utf8


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("periodo;nacionalidad\n2024-01;Perú\n".encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbfperiod,nationality\n2024-01,Peru\n", "utf-8-sig"),
        ("periodo;nacionalidad\n2024-01;Perú – Haití\n".encode("cp1252"), "cp1252"),
        (b"periodo;nacionalidad\n2024-01;Per\xfa \x81\n", "latin-1"),
    ],
)
def test_detects_the_encoding_a_country_exported(tmp_path, data, encoding):
    assert detect_encoding(write(tmp_path, data)) == encoding


def test_a_latin1_byte_on_the_last_line_still_counts(tmp_path):
    data = b"a,b\n" + b"x,y\n" * 300_000 + b"Per\xfa,1\n"
    assert detect_encoding(write(tmp_path, data)) == "cp1252"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_detects_the_delimiter_from_the_header(tmp_path, delimiter):
    header = delimiter.join(["pais_reporte", "periodo", "cantidad"])
    layout = sniff(write(tmp_path, f"\n{header}\nPAN{delimiter}2024-01{delimiter}1\n".encode()))
    assert layout.delimiter == delimiter
    assert layout.header == ["pais_reporte", "periodo", "cantidad"]
    assert layout.header_line == 2


def test_xlsx_and_binary_files_are_not_text(tmp_path):
    with pytest.raises(UnreadableText):
        detect_encoding(write(tmp_path, b"PK\x03\x04rest"))
    with pytest.raises(UnreadableText):
        detect_encoding(write(tmp_path, "a,b\n".encode("utf-16")))


def test_an_empty_file_has_no_header(tmp_path):
    with pytest.raises(UnreadableText, match="empty"):
        sniff(write(tmp_path, b"\n\n"))


def test_transcodes_to_utf8_without_losing_characters(tmp_path):
    source = write(tmp_path, "Perú;Haití\n".encode("cp1252"))
    target = to_utf8(source, "cp1252", tmp_path / "out.csv")
    assert target.read_text(encoding="utf-8") == "Perú;Haití\n"


def test_the_lines_a_profile_skips_are_kept_as_its_title(tmp_path):
    text = "Tránsitos, año 2024;;\r\nFuente: SNM;;\r\n\r\nNacionalidad;Enero\r\nVEN;1\r\n"
    layout = sniff(write(tmp_path, text.encode()), skip_lines=2)
    assert layout.preamble == ("Tránsitos, año 2024;;", "Fuente: SNM;;")
    assert (layout.header, layout.header_line) == (["Nacionalidad", "Enero"], 4)
