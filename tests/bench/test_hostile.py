"""The hostile-file generator (bench/hostile.py) writes what its manifest says, the same way every time."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `bench` is the project's package, not tests/bench
    sys.path.insert(0, str(ROOT))

import csv
import io
import os
import stat
import zipfile

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings

from bench.hostile import (HEADER, KINDS, LONG_NAME_CHARS, MEMBERS, Scale, csv_bytes, strategies, valid_rows,
                           write_hostile, xlsx_bytes)

SMALL = Scale(long_line_bytes=4096, wide_columns=300, bomb_rows=5000, bomb_string_bytes=4096, many_rows=200)
N = len(KINDS) + 20


def _entries(inbox: Path) -> dict[str, str]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(inbox):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            kind = ("link" if stat.S_ISLNK(mode) else "folder" if stat.S_ISDIR(mode) else
                    "file" if stat.S_ISREG(mode) else "fifo" if stat.S_ISFIFO(mode) else "other")
            found[path.relative_to(inbox).as_posix()] = kind
    return found


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return root, write_hostile(root / "inbox", N, seed=5, scale=SMALL, outside=root / "outside")


def test_every_kind_is_written_and_the_manifest_matches_the_disk(written):
    root, manifest = written
    assert set(manifest.kinds()) == set(KINDS)
    on_disk = _entries(root / "inbox")
    for item in manifest.items:
        assert item.path in on_disk, item
        kind = on_disk[item.path]
        assert kind == item.entry or (kind == "other" and item.entry in ("device", "socket")), item
        if item.entry == "file":
            data = (root / "inbox" / item.path).read_bytes()
            assert len(data) == item.size
        if item.entry == "link":
            assert os.readlink(root / "inbox" / item.path) == item.target


def test_what_must_be_read_is_a_regular_file_directly_in_a_member_folder(written):
    _, manifest = written
    for item in manifest.items:
        parts = item.path.split("/")
        in_member = len(parts) == 2 and parts[0] in MEMBERS
        name = parts[-1]
        if item.read:
            assert item.entry == "file" and in_member and item.country == parts[0], item
            assert not name.startswith((".", "~$")), item
        if item.read is False and item.entry == "file" and in_member:
            assert name.startswith((".", "~$")) or name.lower().endswith((".part", ".tmp", ".crdownload")), item


def test_the_same_seed_writes_the_same_bytes_names_and_times(tmp_path):
    one = write_hostile(tmp_path / "a" / "inbox", 120, seed=11, scale=SMALL, outside=tmp_path / "a" / "out")
    two = write_hostile(tmp_path / "b" / "inbox", 120, seed=11, scale=SMALL, outside=tmp_path / "b" / "out")
    other = write_hostile(tmp_path / "c" / "inbox", 120, seed=12, scale=SMALL, outside=tmp_path / "c" / "out")
    assert [(i.kind, i.path, i.sha256) for i in one.items] == [(i.kind, i.path, i.sha256) for i in two.items]
    assert [(i.kind, i.sha256) for i in one.items] != [(i.kind, i.sha256) for i in other.items]
    for item in one.items:
        if item.entry == "file":
            a = os.lstat(tmp_path / "a" / "inbox" / item.path).st_mtime
            b = os.lstat(tmp_path / "b" / "inbox" / item.path).st_mtime
            assert a == b


def test_an_exact_duplicate_arrives_after_its_original_in_the_same_folder(written):
    root, manifest = written
    by_path = {item.path: item for item in manifest.items}
    duplicates = [item for item in manifest.items if item.expect == "duplicate"]
    assert any(item.kind == "duplicate" for item in duplicates)
    for item in duplicates:
        original = by_path[item.duplicate_of]
        assert original.sha256 == item.sha256 and original.country == item.country
        assert os.lstat(root / "inbox" / original.path).st_mtime < os.lstat(root / "inbox" / item.path).st_mtime


def test_the_same_bytes_twice_in_one_folder_are_never_expected_to_be_two_verdicts(written):
    _, manifest = written
    seen = set()
    for item in manifest.items:
        if item.read and item.country and item.expect:
            key = (item.country, item.sha256)
            assert (item.expect == "duplicate") == (key in seen), item
            seen.add(key)


def test_names_fit_the_file_system_and_the_long_ones_are_244_characters(written):
    _, manifest = written
    for item in manifest.items:
        assert len(os.fsencode(item.name)) <= 255, item.name
    assert all(len(item.name) == LONG_NAME_CHARS for item in manifest.items if item.kind == "long_name")


def test_the_valid_files_are_what_the_standard_asks():
    rows = valid_rows(__import__("random").Random(1), "PAN", n=80)
    keys = [tuple(row[:8]) for row in rows]
    assert len(keys) == len(set(keys)) == 80
    assert all(row[0] == "PAN" and row[8].isdigit() and "_T" not in (row[5], row[6], row[7]) for row in rows)
    text = csv_bytes(HEADER, rows).decode()
    assert list(csv.reader(io.StringIO(text)))[1:] == rows


def test_the_workbooks_open_or_break_as_intended(written, tmp_path):
    root, manifest = written
    rows = valid_rows(__import__("random").Random(2), "CRI", n=3)
    (tmp_path / "ok.xlsx").write_bytes(xlsx_bytes(HEADER, rows))
    book = openpyxl.load_workbook(tmp_path / "ok.xlsx", read_only=True, data_only=True)
    got = [["" if v is None else str(v) for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    assert got == [HEADER, *rows]
    [bomb] = [item for item in manifest.items if item.kind == "zip_bomb_rows"][:1]
    with zipfile.ZipFile(root / "inbox" / bomb.path) as archive:
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
        assert sheet.file_size > 20 * sheet.compress_size
    for item in manifest.items:
        if item.kind == "truncated_xlsx":
            with pytest.raises(Exception):
                openpyxl.load_workbook(root / "inbox" / item.path, read_only=True)


@settings(max_examples=30, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(strategies().table)
def test_the_table_strategy_writes_text_that_reads_back(table):
    names, rows, delimiter, encoding, newline = table
    data = csv_bytes(names, rows, delimiter=delimiter, encoding=encoding, newline=newline)
    text = data.decode(encoding)
    parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    assert parsed == [names, *rows]
    if not encoding.startswith("utf-8"):
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8") if any(ord(c) > 127 for c in text) else b"\xff".decode("utf-8")
