import hashlib

from conftest import STANDARD_HEADER, drop, drop_sample
from ingest.submissions import discard_incomplete, discover, ingest_inbox
from ingest.warehouse import connect


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
        " size_bytes, received_at, status) values (99, 'PAN', 'x.csv', 'x', 'abc', 1, now(), 'loading')"
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
    assert [p.name for p in summary.misplaced] == ["notes.txt", "f.csv"]
    assert (paths.inbox / "notes.txt").exists()


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

    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    assert con.execute("select source_row, nationality, count from raw.observations order by 1").fetchall() == [
        (2, "Venezuela", "1234"), (3, "Venezuela", "4321")]
    assert (paths.archive / "PAN").glob("*.xlsx")


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
