"""From a file in the inbox to a registered submission with its rows in `raw`.

Order matters for never losing a file: the bytes are archived first, then the
registry and rows are written in one transaction, and only then does the file
leave the inbox. A crash in between leaves the file in the inbox, and the next
run recognises the same bytes as already received.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingest.layout import REQUIRED, STANDARD_COLUMNS, standard_name
from ingest.settings import Paths
from ingest.sniff import UnreadableText, sniff, to_utf8

_ISO3 = re.compile(r"^[A-Z]{3}$")
_IGNORED_NAMES = re.compile(r"^(\.|~\$)|\.(part|tmp|crdownload)$", re.IGNORECASE)


@dataclass(frozen=True)
class InboxFile:
    country: str
    path: Path


@dataclass
class Received:
    submission_id: int
    country: str
    file_name: str
    duplicate_of: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class LoadOutcome:
    encoding: str | None = None
    delimiter: str | None = None
    source_columns: list[str] = field(default_factory=list)
    mapped_columns: list[str] = field(default_factory=list)
    read_error: str | None = None
    data_rows: int = 0
    notes: list[str] = field(default_factory=list)


def discover(paths: Paths) -> list[InboxFile]:
    """Files waiting in inbox/<ISO3>/, oldest first so revisions apply in order of arrival."""
    found: list[InboxFile] = []
    if not paths.inbox.exists():
        return found
    for folder in sorted(paths.inbox.iterdir()):
        if not folder.is_dir() or not _ISO3.match(folder.name):
            continue
        for path in folder.iterdir():
            if path.is_file() and not _IGNORED_NAMES.search(path.name):
                found.append(InboxFile(folder.name, path))
    return sorted(found, key=lambda f: (f.path.stat().st_mtime, f.country, f.path.name))


def sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _archive(paths: Paths, country: str, sha: str, source: Path) -> Path:
    target = paths.archive / country / f"{sha}{source.suffix.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(source, partial)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.replace(target)
    return target


def receive(con: duckdb.DuckDBPyConnection, paths: Paths, item: InboxFile) -> Received:
    sha, size = sha256_of(item.path)
    existing = con.execute(
        "select submission_id from raw.submissions where reporting_country = ? and sha256 = ?",
        [item.country, sha],
    ).fetchone()
    if existing:
        item.path.unlink()
        return Received(existing[0], item.country, item.path.name, duplicate_of=existing[0])

    archived = _archive(paths, item.country, sha, item.path)
    submission_id = con.execute("select nextval('raw.submission_id_seq')").fetchone()[0]
    # 'loading' marks a submission whose rows may be incomplete: a crash leaves
    # it behind and discard_incomplete() removes it while the file is still in the inbox.
    con.execute(
        """
        insert into raw.submissions (submission_id, reporting_country, file_name, archive_path,
                                     sha256, size_bytes, received_at, status)
        values (?, ?, ?, ?, ?, ?, current_timestamp, 'loading')
        """,
        [submission_id, item.country, item.path.name, str(archived), sha, size],
    )
    outcome = load_text(con, submission_id, archived, paths.work)
    con.execute(
        """
        update raw.submissions
        set encoding = ?, delimiter = ?, source_columns = ?, mapped_columns = ?,
            read_error = ?, data_rows = ?, notes = ?, status = 'received'
        where submission_id = ?
        """,
        [
            outcome.encoding, outcome.delimiter, outcome.source_columns, outcome.mapped_columns,
            outcome.read_error, outcome.data_rows, outcome.notes, submission_id,
        ],
    )
    item.path.unlink()
    return Received(submission_id, item.country, item.path.name, notes=outcome.notes)


def discard_incomplete(con: duckdb.DuckDBPyConnection) -> int:
    """Forget submissions a crash left half-loaded; their files are still in the inbox."""
    stale = [row[0] for row in con.execute(
        "select submission_id from raw.submissions where status = 'loading'"
    ).fetchall()]
    for submission_id in stale:
        con.execute("delete from raw.observations where submission_id = ?", [submission_id])
        con.execute("delete from raw.submissions where submission_id = ?", [submission_id])
    return len(stale)


def load_text(
    con: duckdb.DuckDBPyConnection, submission_id: int, source: Path, work: Path
) -> LoadOutcome:
    """Load a standard-layout delimited file verbatim (all text) into raw.observations."""
    outcome = LoadOutcome()
    try:
        layout = sniff(source)
    except (UnreadableText, UnicodeDecodeError) as exc:
        outcome.read_error = str(exc)
        return outcome
    outcome.encoding, outcome.delimiter = layout.encoding, layout.delimiter
    outcome.source_columns = layout.header

    positions: dict[str, int] = {}
    for index, header in enumerate(layout.header):
        name = standard_name(header)
        if name is None:
            outcome.notes.append(f"ignored column: {header!r}")
        elif name in positions:
            outcome.read_error = f"column {header!r} repeats {name!r}"
        else:
            positions[name] = index
    outcome.mapped_columns = list(positions)
    if outcome.read_error or any(name not in positions for name in REQUIRED):
        return outcome

    work.mkdir(parents=True, exist_ok=True)
    utf8 = to_utf8(source, layout.encoding, work / f"{submission_id}.utf8.csv")
    columns = {f"c{i}": "varchar" for i in range(len(layout.header))}
    select_list = ", ".join(
        f"c{positions[name]}" if name in positions else f"'{default}'"
        for name, (_, _, default) in STANDARD_COLUMNS.items()
    )
    try:
        con.execute(
            f"""
            insert into raw.observations
            select ?, row_number() over () + ?, {select_list}
            from read_csv(?, header = false, skip = ?, delim = ?, quote = '"', escape = '"',
                          columns = {columns!r}, null_padding = true, strict_mode = true,
                          auto_detect = false)
            """,
            [submission_id, layout.header_line, str(utf8), layout.header_line, layout.delimiter],
        )
    except duckdb.Error as exc:
        outcome.read_error = f"not a well-formed table: {str(exc).splitlines()[0]}"
        return outcome
    finally:
        if utf8 != source:
            utf8.unlink(missing_ok=True)
    outcome.data_rows = con.execute(
        "select count(*) from raw.observations where submission_id = ?", [submission_id]
    ).fetchone()[0]
    return outcome


@dataclass
class IngestSummary:
    received: list[Received] = field(default_factory=list)
    failed: list[tuple[InboxFile, str]] = field(default_factory=list)


def ingest_inbox(con: duckdb.DuckDBPyConnection, paths: Paths) -> IngestSummary:
    """Receive every inbox file; one file's failure never stops the others."""
    paths.ensure()
    discard_incomplete(con)
    summary = IngestSummary()
    for item in discover(paths):
        try:
            summary.received.append(receive(con, paths, item))
        except (OSError, duckdb.Error) as exc:
            # The file stays in the inbox for the next run; the error is reported.
            summary.failed.append((item, f"{type(exc).__name__}: {exc}"))
    return summary
