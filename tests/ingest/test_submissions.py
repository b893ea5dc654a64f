import hashlib
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from conftest import SAMPLES, STANDARD_HEADER, drop, drop_sample
from expectations.rules import RULES_BY_ID
from ingest import submissions
from ingest.submissions import discard_incomplete, discover, ingest_inbox
from hmo.warehouse import connect


def test_a_file_is_archived_with_its_hash_registered_and_leaves_the_inbox(paths):
    inbox_file = drop_sample(paths, "MEX")
    original = inbox_file.read_bytes()
    con = connect(paths.warehouse)
    summary = ingest_inbox(con, paths)

    assert not inbox_file.exists()
    [received] = summary.received
    sha, encoding, delimiter, rows, archive = con.execute(
        "select sha256, encoding, delimiter, data_rows, archive_path from raw.submissions"
    ).fetchone()
    assert sha == hashlib.sha256(original).hexdigest()
    assert (encoding, delimiter, rows) == ("latin-1", ";", 15) or (encoding, delimiter, rows) == ("cp1252", ";", 15)
    assert open(archive, "rb").read() == original


def test_rows_are_loaded_verbatim_with_their_spreadsheet_row_number(paths):
    drop_sample(paths, "MEX")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    row = con.execute(
        "select source_row, nationality, count, obs_status from raw.observations order by source_row limit 1 offset 3"
    ).fetchone()
    assert row == (5, "Haití", "330", "A")


def test_same_bytes_twice_make_one_submission(paths):
    drop_sample(paths, "PAN")
    con = connect(paths.warehouse)
    first = ingest_inbox(con, paths).received[0]
    drop_sample(paths, "PAN")
    second = ingest_inbox(con, paths).received[0]
    assert second.duplicate_of == first.submission_id
    assert con.execute("select count(*) from raw.submissions").fetchone()[0] == 1
    assert not list(discover(paths))


def test_the_archive_holds_each_received_file_once_under_its_hash_and_nothing_half_copied(paths):
    drop_sample(paths, "PAN")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    drop_sample(paths, "PAN")  # the same bytes again: a duplicate, answered, not archived twice
    ingest_inbox(con, paths)
    [(sha,)] = con.execute("select sha256 from raw.submissions").fetchall()
    archived = sorted(path.name for path in (paths.archive / "PAN").iterdir())
    assert archived == [f"{sha}.csv"]


def test_a_copy_a_killed_run_left_half_staged_is_removed_by_the_next(paths):
    left = paths.archive / "PAN" / ".receiving-k1ll3d.partial"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"reporting_country,period\nPAN,20")
    drop_sample(paths, "PAN")
    ingest_inbox(connect(paths.warehouse), paths)
    assert not left.exists() and len(list(left.parent.iterdir())) == 1


def test_a_file_still_being_written_while_it_is_copied_stays_in_the_inbox(paths, monkeypatch):
    inbox_file = drop_sample(paths, "PAN")
    copy_bytes = submissions._copy_bytes

    def copy_while_the_sender_writes(source, sink):
        copied = copy_bytes(source, sink)
        with inbox_file.open("ab") as sender:  # the upload goes on after the copy
            sender.write(b"PAN,2024-01,more,rows\n")
        return copied

    monkeypatch.setattr(submissions, "_copy_bytes", copy_while_the_sender_writes)
    con = connect(paths.warehouse)
    summary = ingest_inbox(con, paths)

    [(failed, reason)] = summary.failed
    assert failed.path == inbox_file and "changed while it was read" in reason
    assert inbox_file.read_bytes().endswith(b"more,rows\n")
    assert con.execute("select count(*) from raw.submissions").fetchone()[0] == 0
    assert list((paths.archive / "PAN").iterdir()) == []

    monkeypatch.setattr(submissions, "_copy_bytes", copy_bytes)  # the upload is complete: the next run reads it
    assert ingest_inbox(con, paths).received and not inbox_file.exists()


def test_a_file_missing_required_columns_loads_no_rows_but_is_kept(paths):
    drop(paths, "PAN", "short.csv", "reporting_country,period,count\nPAN,2024-01,5\n")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    missing, rows = con.execute("select missing_columns, data_rows from raw.submissions").fetchone()
    assert missing == ["flow_type", "sex", "age", "nationality"]
    assert rows == 0
    assert len(list((paths.archive / "PAN").iterdir())) == 1


def test_a_malformed_table_is_recorded_not_raised(paths):
    drop(paths, "PAN", "bad.csv", STANDARD_HEADER + "\nPAN,2024-01,ENTRY,_T,_T,F,_T,VEN,1,A,extra,more\n")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    error = con.execute("select read_error from raw.submissions").fetchone()[0]
    assert error and "well-formed" in error


def test_a_half_loaded_submission_is_forgotten_and_its_file_read_again(paths):
    drop_sample(paths, "PAN")
    con = connect(paths.warehouse)
    con.execute(
        "insert into raw.submissions (submission_id, reporting_country, file_name, archive_path, sha256,"
        " size_bytes, received_at, load_state) values (99, 'PAN', 'x.csv', 'x', 'abc', 1, now(), 'loading')"
    )
    con.execute("insert into raw.observations (submission_id, source_row) values (99, 2)")
    assert discard_incomplete(con) == 1
    assert con.execute("select count(*) from raw.observations where submission_id = 99").fetchone()[0] == 0


def test_files_outside_country_folders_are_reported_and_partial_uploads_left_alone(paths):
    drop(paths, "PAN", "upload.csv.part", "x")
    drop(paths, "PAN", "~$open.xlsx", "x")
    (paths.inbox / "notes.txt").write_text("x")
    drop(paths, "panama", "f.csv", "x")
    assert discover(paths) == []
    con = connect(paths.warehouse)
    summary = ingest_inbox(con, paths)
    reasons = {refusal.path.as_posix(): refusal.reason for refusal in summary.refused}
    assert sorted(reasons) == ["PAN/upload.csv.part", "PAN/~$open.xlsx", "notes.txt", "panama/f.csv"]
    assert "not in a country folder" in reasons["notes.txt"]
    assert "panama is not the ISO3 code" in reasons["panama/f.csv"]
    assert "read once the file is renamed without .part" in reasons["PAN/upload.csv.part"]
    assert all((paths.inbox / path).exists() for path in reasons)


def test_a_lower_case_country_folder_is_read_as_the_country(paths):
    drop_sample(paths, "PAN")
    (paths.inbox / "PAN").rename(paths.inbox / "pan")
    [item] = discover(paths)
    assert item.country == "PAN"


def test_an_xlsx_workbook_loads_from_its_first_sheet(paths):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(STANDARD_HEADER.split(","))
    sheet.append(["PAN", "2024-01", "ENTRY", "_T", "COL", "F", "_T", "Venezuela", 1234, "A"])
    sheet.append(["PAN", "2024-01", "ENTRY", "_T", "COL", "M", "_T", "Venezuela", 4321.0, "A"])
    book.create_sheet("Notas").append(["not data"])
    target = paths.inbox / "PAN" / "entradas.xlsx"
    target.parent.mkdir(parents=True, exist_ok=True)
    book.save(target)
    workbook = target.read_bytes()

    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    assert con.execute("select source_row, nationality, count from raw.observations order by 1").fetchall() == [
        (2, "Venezuela", "1234"), (3, "Venezuela", "4321")]
    # The workbook itself is archived, under its hash, not the table read from it.
    [archived] = (paths.archive / "PAN").glob("*.xlsx")
    assert archived.name == f"{hashlib.sha256(workbook).hexdigest()}.xlsx"
    assert archived.read_bytes() == workbook


def test_a_broken_xlsx_is_recorded_as_unreadable(paths):
    drop(paths, "PAN", "roto.xlsx", b"PK\x03\x04 this is not a workbook")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    error = con.execute("select read_error from raw.submissions").fetchone()[0]
    assert "XLSX" in error


def test_row_numbers_follow_the_file_when_the_reader_splits_it_between_threads(paths):
    """40 MB is several of DuckDB's CSV buffers, read by both cores in parallel."""
    import duckdb

    target = paths.inbox / "PAN" / "big.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    duckdb.execute(
        f"""copy (select 'PAN' as reporting_country, '2024-01' as period, 'ENTRY' as flow_type,
                         'BP' || (range // 1000) as border_point, '_T' as counterpart_country, '_T' as sex,
                         '_T' as age, 'VEN' as nationality, (range + 2)::varchar as count,
                         repeat('A', 1) as obs_status
                  from range(800000)) to '{target}' (header)"""
    )
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    # Each row's count was written as its own line number.
    assert con.execute(
        "select count(*), count(*) filter (where count::bigint <> source_row) from raw.observations"
    ).fetchone() == (800000, 0)


def test_cells_reach_raw_as_written_padding_included(paths):
    drop(paths, "PAN", "padded.csv", STANDARD_HEADER + "\n PAN ,2024-01, ENTRY ,,, F ,_T, VEN , 12 ,\n")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    assert con.execute("select reporting_country, nationality, count from raw.observations").fetchone() == (
        " PAN ", " VEN ", " 12 ")


def test_a_latin1_byte_past_the_first_megabyte_is_still_read_as_latin1(paths):
    rows = "PAN,2024-01,ENTRY,,,F,_T,VEN,1,A\n" * 40_000 + "PAN,2024-01,ENTRY,,,M,_T,Haití,2,A\n"
    drop(paths, "PAN", "late_accent.csv", (STANDARD_HEADER + "\n" + rows).encode("latin-1"))
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    encoding, error, data_rows = con.execute("select encoding, read_error, data_rows from raw.submissions").fetchone()
    assert (encoding, error, data_rows) == ("cp1252", None, 40_001)
    assert con.execute("select nationality from raw.observations where source_row = 40002").fetchone() == ("Haití",)


def test_a_received_file_leaves_exactly_one_received_event(paths):
    from hmo import events

    inbox_file = drop_sample(paths, "PAN")
    original = inbox_file.read_bytes()
    con = connect(paths.warehouse)
    [received] = ingest_inbox(con, paths).received

    [event] = events.read_all(paths)
    sha, archive_path, received_at = con.execute(
        "select sha256, archive_path, received_at from raw.submissions").fetchone()
    assert event["kind"] == "received"
    assert {k: event[k] for k in ("submission_id", "reporting_country", "file_name", "sha256", "size_bytes")} == {
        "submission_id": received.submission_id, "reporting_country": "PAN", "file_name": inbox_file.name,
        "sha256": sha, "size_bytes": len(original)}
    assert (paths.root / event["archive_path"]).read_bytes() == original
    assert paths.root / event["archive_path"] == Path(archive_path)
    assert datetime.fromisoformat(event["received_at"]) == received_at

    drop_sample(paths, "PAN")  # the same bytes again: a duplicate, not a second arrival
    ingest_inbox(con, paths)
    assert [e["kind"] for e in events.read_all(paths)] == ["received"]


def test_a_duplicate_file_is_recorded_to_be_answered(paths):
    drop_sample(paths, "PAN")
    con = connect(paths.warehouse)
    [first] = ingest_inbox(con, paths).received
    again = drop(paths, "PAN", "otra_vez.csv", next((SAMPLES / "PAN").iterdir()).read_bytes())
    [second] = ingest_inbox(con, paths).received

    rows = con.execute(
        "select duplicate_id, submission_id, reporting_country, file_name, received_at is not null"
        " from raw.duplicates").fetchall()
    assert rows == [(second.duplicate_id, first.submission_id, "PAN", "otra_vez.csv", True)]
    assert (second.submission_id, second.duplicate_of) == (first.submission_id, first.submission_id)
    assert second.duplicate_id is not None and first.duplicate_id is None
    assert not again.exists()


@pytest.mark.parametrize(
    ("header", "named_twice"),
    [
        (STANDARD_HEADER + ",count", ["count=count|count"]),
        (STANDARD_HEADER + ",cantidad", ["count=count|cantidad"]),
        (STANDARD_HEADER.replace("reporting_country", "Pais_Reporte") + ",pais reporte",
         ["reporting_country=Pais_Reporte|pais reporte"]),
        (STANDARD_HEADER + ",Cantidad,PERIODO", ["period=period|PERIODO", "count=count|Cantidad"]),
    ],
)
def test_a_header_naming_a_column_twice_loads_no_rows(paths, header, named_twice):
    drop(paths, "PAN", "twice.csv", header + "\nPAN,2024-01,ENTRY,_T,_T,F,_T,VEN,5,A,50,2024-02\n")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    duplicates, missing, rows = con.execute(
        "select duplicate_columns, missing_columns, data_rows from raw.submissions").fetchone()
    assert (duplicates, missing, rows) == (named_twice, [], 0)
    assert con.execute("select count(*) from raw.observations").fetchone()[0] == 0
    # What the receipt will list: S02 once per column, with the headers as written.
    s02 = RULES_BY_ID["S02"].sql.replace("{batch}", "raw.submissions")
    assert con.execute(f"select column_name, value from ({s02}) order by all").fetchall() == sorted(
        (entry.split("=")[0], entry.split("=")[1].replace("|", " | ")) for entry in named_twice)


def test_headers_nothing_reads_may_repeat(paths):
    drop(paths, "PAN", "notes.csv", STANDARD_HEADER + ",nota,Nota\nPAN,2024-01,ENTRY,_T,_T,F,_T,VEN,5,A,a,b\n")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    assert con.execute("select duplicate_columns, data_rows from raw.submissions").fetchone() == ([], 1)


PROFILE = """
name: pan-entradas
country: PAN
match: {header: [Año, Mes, Nacionalidad, Total]}
period: {year: Año, month: Mes}
columns: {nationality: Nacionalidad, count: Total}
constants: {flow_type: ENTRY, sex: _T, age: _T}
"""


def test_a_column_a_profile_reads_named_twice_loads_no_rows(paths, tmp_path, monkeypatch):
    profile_dir = tmp_path / "profiles"
    profile_dir.mkdir()
    (profile_dir / "PAN-entradas.yml").write_text(PROFILE, encoding="utf-8")
    monkeypatch.setattr("ingest.profiles.PROFILES_DIR", profile_dir)
    drop(paths, "PAN", "dos_totales.csv", "Año;Mes;Nacionalidad;Total;TOTAL;Obs;Obs\n2024;1;Perú;5;6;x;y\n")
    drop(paths, "PAN", "bien.csv", "Año;Mes;Nacionalidad;Total;Obs;Obs\n2024;1;Perú;5;x;y\n")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    assert con.execute(
        "select file_name, profile, duplicate_columns, data_rows from raw.submissions order by file_name"
    ).fetchall() == [("bien.csv", "pan-entradas", [], 1),
                     ("dos_totales.csv", "pan-entradas", ["count=Total|TOTAL"], 0)]


def test_ids_are_not_handed_out_again_after_a_killed_ingest(paths):
    """DuckDB forgets a bare `select nextval()` when the process dies; the next run must not reuse its ids."""
    for i in range(3):
        drop(paths, "PAN", f"antes_{i}.csv", STANDARD_HEADER + f"\nPAN,2024-0{i + 1},ENTRY,_T,_T,_T,_T,VEN,{i},A\n")
    drop(paths, "PAN", "copia.csv", STANDARD_HEADER + "\nPAN,2024-01,ENTRY,_T,_T,_T,_T,VEN,0,A\n")
    connect(paths.warehouse).close()  # a warehouse that exists (checkpointed), as after any run
    killed = subprocess.run(
        [sys.executable, "-c",
         "import os, signal; from hmo.settings import Paths; from hmo.warehouse import connect; "
         "from ingest.submissions import discover, receive; paths = Paths.from_env(); "
         "con = connect(paths.warehouse); [receive(con, paths, item) for item in discover(paths)]; "
         "os.kill(os.getpid(), signal.SIGKILL)"],  # a power cut in the middle of an ingest
        env={**os.environ, "HMO_DATA_DIR": str(paths.root)}, timeout=120)
    assert killed.returncode == -9
    for i in range(2):
        drop(paths, "PAN", f"despues_{i}.csv", STANDARD_HEADER + f"\nPAN,2024-0{i + 4},ENTRY,_T,_T,_T,_T,VEN,{i},A\n")
    drop(paths, "PAN", "copia_2.csv", STANDARD_HEADER + "\nPAN,2024-02,ENTRY,_T,_T,_T,_T,VEN,1,A\n")
    con = connect(paths.warehouse)

    summary = ingest_inbox(con, paths)

    assert summary.failed == []
    assert sorted(r.submission_id for r in summary.received if not r.duplicate_of) == [4, 5]
    assert con.execute("select list(duplicate_id order by 1) from raw.duplicates").fetchone()[0] == [1, 2]
