"""What the inbox may hold that is not a country's file: refused with a reason, never read, left in place."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import duckdb
import pytest

from conftest import STANDARD_HEADER, drop, drop_sample
from hmo.settings import Paths
from ingest.submissions import Refusal, discover, ingest_inbox, receive
from hmo.warehouse import connect

PASSWD = Path("/etc/passwd")


def refusals(summary) -> dict[str, str]:
    return {refusal.path.as_posix(): refusal.reason for refusal in summary.refused}


def archived(paths: Paths) -> list[str]:
    return sorted(p.relative_to(paths.archive).as_posix() for p in paths.archive.rglob("*") if p.is_file())


def text_found(con: duckdb.DuckDBPyConnection, needle: str) -> list[str]:
    """Every raw table column (text or list of text) holding `needle` somewhere."""
    columns = con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema = 'raw' and (data_type = 'VARCHAR' or data_type = 'VARCHAR[]')"
    ).fetchall()
    found = []
    for schema, table, column in columns:
        hits = con.execute(
            f'select count(*) from {schema}.{table} where contains("{column}"::varchar, ?)', [needle]
        ).fetchone()[0]
        if hits:
            found.append(f"{table}.{column}")
    return found


def standard_file(country: str, count: int = 5) -> str:
    return f"{STANDARD_HEADER}\n{country},2024-01,ENTRY,_T,_T,F,_T,VEN,{count},A\n"


@pytest.mark.skipif(not PASSWD.is_file(), reason="needs /etc/passwd")
def test_a_link_to_etc_passwd_is_refused_and_nothing_of_it_is_read(paths):
    link = paths.inbox / "PAN" / "passwd.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(PASSWD)
    first_line = PASSWD.read_text(encoding="utf-8", errors="replace").splitlines()[0]

    con = connect(paths.warehouse)
    summary = ingest_inbox(con, paths)

    assert summary.received == [] and summary.failed == []
    assert "symbolic link: not followed" in refusals(summary)["PAN/passwd.csv"]
    assert link.is_symlink() and os.readlink(link) == str(PASSWD)
    assert archived(paths) == []
    assert con.execute("select count(*) from raw.submissions").fetchone()[0] == 0
    assert text_found(con, first_line) == [] and text_found(con, first_line.split(":")[0] + ":x:") == []
    assert not any(paths.events.iterdir())


def test_a_country_folder_linked_to_another_reads_nothing_as_that_country(paths):
    original = drop_sample(paths, "PAN")
    (paths.inbox / "GTM").symlink_to(paths.inbox / "PAN", target_is_directory=True)

    con = connect(paths.warehouse)
    summary = ingest_inbox(con, paths)

    assert [(r.country, r.file_name) for r in summary.received] == [("PAN", original.name)]
    assert con.execute("select reporting_country, count(*) from raw.submissions group by 1").fetchall() == [("PAN", 1)]
    assert "symbolic link" in refusals(summary)["GTM"]
    assert (paths.inbox / "GTM").is_symlink()
    assert not (paths.archive / "GTM").exists()


def test_a_file_linked_into_another_country_folder_is_refused(paths):
    colombia = drop(paths, "COL", "entradas.csv", standard_file("COL"))
    (paths.inbox / "PAN").mkdir()
    (paths.inbox / "PAN" / "entradas.csv").symlink_to(colombia)

    con = connect(paths.warehouse)
    summary = ingest_inbox(con, paths)

    assert [r.country for r in summary.received] == ["COL"]
    assert "symbolic link" in refusals(summary)["PAN/entradas.csv"]
    assert con.execute("select list(reporting_country) from raw.submissions").fetchone()[0] == ["COL"]
    assert not (paths.archive / "PAN").exists()
    assert (paths.inbox / "PAN" / "entradas.csv").is_symlink()


def _within(seconds: float, fifo: Path, work):
    """work() in a thread; if it hangs on the pipe, a writer opens it to set it free.

    Returns (its result, whether it had to be freed)."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(work()), daemon=True)
    worker.start()
    worker.join(seconds)
    hung = worker.is_alive()
    if hung:  # a reader blocked in open() returns once a writer opens the pipe and closes it
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(seconds)
    return (result[0] if result else None), hung


def test_a_fifo_is_refused_without_waiting_for_a_writer(paths):
    fifo = paths.inbox / "PAN" / "pipe.csv"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    drop(paths, "PAN", "entradas.csv", standard_file("PAN"))

    con = connect(paths.warehouse)
    summary, hung = _within(20, fifo, lambda: ingest_inbox(con, paths))

    assert not hung
    assert "pipe (FIFO)" in refusals(summary)["PAN/pipe.csv"]
    assert [r.file_name for r in summary.received] == ["entradas.csv"]
    assert fifo.exists()
    assert con.execute("select list(file_name) from raw.submissions").fetchone()[0] == ["entradas.csv"]


def test_what_is_not_a_countrys_file_is_refused_with_its_reason_and_left_in_place(paths):
    drop(paths, "PAN", "~$lock.csv", "x")
    drop(paths, "PAN", "upload.csv.part", standard_file("PAN"))
    drop(paths, "PAN", "descarga.csv.partial", standard_file("PAN"))
    drop(paths, "PAN", ".hidden.csv", standard_file("PAN"))
    (paths.inbox / "PAN" / "x.csv").mkdir()
    drop(paths, "PAN", "2024/enero.csv", standard_file("PAN"))
    drop(paths, "ZZZ", "f.csv", standard_file("ZZZ"))
    (paths.inbox / "top.csv").write_text(standard_file("PAN"), encoding="utf-8")
    drop(paths, "pan", "bueno.csv", standard_file("PAN", 7))

    con = connect(paths.warehouse)
    summary = ingest_inbox(con, paths)

    reasons = refusals(summary)
    expected = {
        "PAN/~$lock.csv": "Office lock file",
        "PAN/upload.csv.part": "read once the file is renamed without .part",
        "PAN/descarga.csv.partial": "read once the file is renamed without .partial",
        "PAN/.hidden.csv": "hidden file",
        "PAN/x.csv": "a folder, not a file",
        "PAN/2024/enero.csv": "only files directly in inbox/PAN/ are read",
        "ZZZ/f.csv": "ZZZ is not the ISO3 code of an RCM or SACM member country",
        "top.csv": "not in a country folder",
    }
    assert sorted(reasons) == sorted(expected)
    for path, words in expected.items():
        assert words in reasons[path], path
        assert " / " in reasons[path]  # Spanish / English
        assert (paths.inbox / path).exists(), path
    assert [(r.country, r.file_name) for r in summary.received] == [("PAN", "bueno.csv")]
    assert con.execute("select reporting_country, file_name from raw.submissions").fetchall() == [("PAN", "bueno.csv")]
    assert not (paths.archive / "ZZZ").exists()


def test_refusals_stay_in_the_warehouse_while_the_files_stay_in_the_inbox(paths):
    lock = drop(paths, "PAN", "~$lock.csv", "x")
    stray = drop(paths, "ZZZ", "f.csv", "x")
    con = connect(paths.warehouse)

    ingest_inbox(con, paths)
    first = dict(con.execute("select path, first_seen from raw.refused_files").fetchall())
    assert sorted(first) == ["PAN/~$lock.csv", "ZZZ/f.csv"]

    ingest_inbox(con, paths)
    again = con.execute("select path, first_seen, last_seen from raw.refused_files order by path").fetchall()
    assert [(path, seen) for path, seen, _ in again] == sorted(first.items())
    assert all(last > seen for _, seen, last in again)

    stray.unlink()
    ingest_inbox(con, paths)
    [(path, reason, seen)] = con.execute("select path, reason, first_seen from raw.refused_files").fetchall()
    assert (path, seen) == ("PAN/~$lock.csv", first["PAN/~$lock.csv"]) and "Office lock file" in reason

    lock.unlink()
    ingest_inbox(con, paths)
    assert con.execute("select count(*) from raw.refused_files").fetchone()[0] == 0


def test_a_deep_tree_of_folders_is_reported_by_the_folder_where_the_walk_stops(paths):
    deep = paths.inbox / "PAN" / "old"
    for _ in range(60):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / "f.csv").write_text("x")
    (paths.inbox / "PAN" / "old" / "kept.csv").write_text("x")

    con = connect(paths.warehouse)
    summary = ingest_inbox(con, paths)

    reasons = refusals(summary)
    assert len(reasons) == 2
    assert "only files directly in inbox/PAN/" in reasons["PAN/old/kept.csv"]
    [(too_deep, why)] = [(path, why) for path, why in reasons.items() if path != "PAN/old/kept.csv"]
    assert too_deep.startswith("PAN/old/d") and "not walked" in why


def test_a_wide_tree_outside_the_country_folders_is_walked_only_so_far(paths, monkeypatch):
    monkeypatch.setattr("ingest.submissions._MAX_ENTRIES", 20)
    for i in range(50):
        drop(paths, "ZZZ", f"{i:02d}.csv", "x")
    con = connect(paths.warehouse)
    reasons = refusals(ingest_inbox(con, paths))
    assert len(reasons) == 21
    assert "not walked" in reasons["ZZZ"]


@pytest.mark.skipif(not PASSWD.is_file(), reason="needs /etc/passwd")
def test_a_file_swapped_for_a_link_after_discovery_is_not_read(paths):
    target = drop(paths, "PAN", "entradas.csv", standard_file("PAN"))
    [item] = discover(paths)
    target.unlink()
    target.symlink_to(PASSWD)

    con = connect(paths.warehouse)
    outcome = receive(con, paths, item)

    assert isinstance(outcome, Refusal) and outcome.path == Path("PAN/entradas.csv")
    assert "symbolic link" in outcome.reason
    assert archived(paths) == [] and target.is_symlink()
    assert con.execute("select count(*) from raw.submissions").fetchone()[0] == 0


def test_a_country_folder_swapped_for_a_link_after_discovery_is_not_followed(paths):
    drop(paths, "PAN", "entradas.csv", standard_file("PAN"))
    drop(paths, "COL", "entradas.csv", standard_file("COL"))
    [_, panama] = sorted(discover(paths), key=lambda item: item.country)
    (paths.inbox / "PAN").rename(paths.inbox / "PAN.moved")
    (paths.inbox / "PAN").symlink_to(paths.inbox / "COL", target_is_directory=True)

    con = connect(paths.warehouse)
    outcome = receive(con, paths, panama)

    assert isinstance(outcome, Refusal) and outcome.path == Path("PAN") and "symbolic link" in outcome.reason
    assert (paths.inbox / "COL" / "entradas.csv").exists()
    assert archived(paths) == []


def test_a_file_swapped_for_a_fifo_after_discovery_is_refused_at_once(paths):
    target = drop(paths, "PAN", "entradas.csv", standard_file("PAN"))
    [item] = discover(paths)
    target.unlink()
    os.mkfifo(target)

    con = connect(paths.warehouse)
    outcome, hung = _within(10, target, lambda: receive(con, paths, item))

    assert not hung
    assert isinstance(outcome, Refusal) and "pipe (FIFO)" in outcome.reason
    assert target.exists() and archived(paths) == []


def test_a_name_that_is_not_utf8_is_read_under_a_faithful_text_name(paths):
    """A file named on a Windows-1252 machine (b'caf\\xe9.csv') must neither stop the run nor be lost."""
    inbox = os.fsencode(paths.inbox)
    os.makedirs(inbox + b"/PAN", exist_ok=True)
    with open(inbox + b"/PAN/caf\xe9.csv", "w", encoding="utf-8") as handle:
        handle.write(standard_file("PAN"))
    os.makedirs(inbox + b"/ZZ\xe9")
    with open(inbox + b"/ZZ\xe9/x.csv", "w") as handle:
        handle.write("x")
    con = connect(paths.warehouse)

    summary = ingest_inbox(con, paths)

    assert [r.file_name for r in summary.received] == ["caf\\xe9.csv"]
    assert con.execute("select file_name, data_rows from raw.submissions").fetchall() == [("caf\\xe9.csv", 1)]
    assert con.execute("select path from raw.refused_files").fetchall() == [("ZZ\\xe9/x.csv",)]
    assert os.path.exists(inbox + b"/ZZ\xe9/x.csv")
