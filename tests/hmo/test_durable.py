"""A file written for a reader (a receipt, an event, an alias file) is there whole or not at all."""
from __future__ import annotations

from pathlib import Path

import pytest

from hmo.durable import write_text_atomically


def test_a_rewrite_replaces_the_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    receipt = tmp_path / "enero.csv.1.accepted.txt"
    receipt.write_text("old\n", encoding="utf-8")

    write_text_atomically(receipt, "Aceptado / Accepted\n")

    assert receipt.read_text(encoding="utf-8") == "Aceptado / Accepted\n"
    assert [p.name for p in tmp_path.iterdir()] == [receipt.name]


def test_a_write_that_fails_halfway_leaves_the_old_file_as_it_was(tmp_path: Path) -> None:
    aliases = tmp_path / "COL.csv"
    aliases.write_text("name,code\nGuyane,GUF\n", encoding="utf-8")

    with pytest.raises(UnicodeEncodeError):
        write_text_atomically(aliases, "name,code\n" + "x" * 100_000 + "\udc80")

    assert aliases.read_text(encoding="utf-8") == "name,code\nGuyane,GUF\n"
    assert [p.name for p in tmp_path.iterdir()] == ["COL.csv"]
