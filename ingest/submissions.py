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

from ingest import transform
from ingest.profiles import STANDARD, Profile, choose, load_profiles
from ingest.settings import Paths
from ingest.sniff import TextLayout, UnreadableText, detect_encoding, is_xlsx, sniff, to_utf8, xlsx_to_csv

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
    profile: str | None = None
    sum_duplicates: bool = False
    missing_columns: list[str] = field(default_factory=list)
    source_columns: list[str] = field(default_factory=list)
    read_error: str | None = None
    data_rows: int = 0
    notes: list[str] = field(default_factory=list)


def discover(paths: Paths) -> list[InboxFile]:
    """Files waiting in inbox/<ISO3>/, oldest first so revisions apply in order of arrival."""
    found: list[InboxFile] = []
    if not paths.inbox.exists():
        return found
    for folder in sorted(paths.inbox.iterdir()):
        if not folder.is_dir() or not _ISO3.match(folder.name.upper()):
            continue
        for path in folder.iterdir():
            if path.is_file() and not _IGNORED_NAMES.search(path.name):
                found.append(InboxFile(folder.name.upper(), path))
    return sorted(found, key=lambda f: (f.path.stat().st_mtime, f.country, f.path.name))


def misplaced(paths: Paths) -> list[Path]:
    """Files the pipeline cannot attribute to a country: left where they are, and reported."""
    if not paths.inbox.exists():
        return []
    return sorted(
        path for path in paths.inbox.rglob("*")
        if path.is_file() and not _IGNORED_NAMES.search(path.name)
        and not (path.parent.parent == paths.inbox and _ISO3.match(path.parent.name.upper()))
    )


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


def receive(con: duckdb.DuckDBPyConnection, paths: Paths, item: InboxFile,
            profiles: list[Profile] | None = None) -> Received:
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
    outcome = load_file(con, submission_id, archived, item.country, item.path.name, paths.work,
                        load_profiles() if profiles is None else profiles)
    con.execute(
        """
        update raw.submissions
        set encoding = ?, delimiter = ?, profile = ?, source_columns = ?, missing_columns = ?,
            read_error = ?, data_rows = ?, notes = ?, sum_duplicates = ?, status = 'received'
        where submission_id = ?
        """,
        [
            outcome.encoding, outcome.delimiter, outcome.profile, outcome.source_columns,
            outcome.missing_columns, outcome.read_error, outcome.data_rows,
            outcome.notes, outcome.sum_duplicates, submission_id,
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


def load_file(
    con: duckdb.DuckDBPyConnection, submission_id: int, source: Path, country: str, file_name: str,
    work: Path, profiles: list[Profile], whole_file_encoding: bool = False,
) -> LoadOutcome:
    """Apply the matching profile (or the standard layout) and load the rows, as text, into raw."""
    outcome = LoadOutcome()
    work.mkdir(parents=True, exist_ok=True)
    scratch: list[Path] = []
    try:
        try:
            chosen, layout, text = _read_layout(source, country, file_name, work, profiles, scratch,
                                                whole_file_encoding)
        except (UnreadableText, UnicodeDecodeError) as exc:
            outcome.read_error = str(exc)
            return outcome
        outcome.profile = chosen.name
        outcome.encoding, outcome.delimiter = layout.encoding, layout.delimiter
        outcome.source_columns = layout.header
        utf8 = to_utf8(text, layout.encoding, work / f"{submission_id}.utf8.csv")
        if utf8 != text:
            scratch.append(utf8)
        columns = {f"c{i}": "varchar" for i in range(len(layout.header))}
        # Rows are numbered by position: DuckDB's parallel reader fills a staging
        # table in file order (insertion order kept), and a row's place in it is
        # its rowid. Measured at 10M rows: 12-14 s against 20 s for row_number()
        # over a sequential read and 31 s over a parallel one (docs/benchmarks.md).
        # tests/ingest/test_submissions.py checks the numbering on a file the
        # reader splits between threads.
        relation = f"(select rowid + {layout.header_line + 1} as source_row, * from hmo_stage)"
        mapping = transform.plan(chosen, layout.header, country, relation)
        outcome.missing_columns = mapping.missing
        outcome.notes += [f"ignored column: {name!r}" for name in mapping.ignored]
        if not chosen.is_standard:
            outcome.notes.insert(0, f"profile: {chosen.name} ({chosen.path.name if chosen.path else ''})")
        if mapping.missing:
            return outcome
        try:
            con.execute("set preserve_insertion_order = true")
            con.execute(
                f"create or replace temp table hmo_stage as select * "
                f"from read_csv({_sql_text(str(utf8))}, header = false, skip = {layout.header_line}, "
                f"delim = {_sql_text(layout.delimiter)}, quote = '\"', escape = '\"', columns = {columns!r}, "
                f"null_padding = true, strict_mode = true, auto_detect = false)"
            )
            con.execute("set preserve_insertion_order = false")
            con.execute(f"insert into raw.observations select {int(submission_id)}, * from ({mapping.sql})")
        except duckdb.InvalidInputException as exc:
            if "Invalid unicode" in str(exc) and not whole_file_encoding:
                # Only the head was checked (sniff.detect_encoding): a non-UTF-8
                # byte further on means a legacy encoding after all.
                return load_file(con, submission_id, source, country, file_name, work, profiles, True)
            outcome.read_error = f"not a well-formed table: {str(exc).splitlines()[0]}"
            return outcome
        except duckdb.Error as exc:
            outcome.read_error = f"not a well-formed table: {str(exc).splitlines()[0]}"
            return outcome
        finally:
            con.execute("set preserve_insertion_order = false")
            con.execute("drop table if exists hmo_stage")
        outcome.data_rows = con.execute(
            "select count(*) from raw.observations where submission_id = ?", [submission_id]
        ).fetchone()[0]
        outcome.sum_duplicates = chosen.sum_duplicates
        return outcome
    finally:
        for path in scratch:
            path.unlink(missing_ok=True)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read_layout(
    source: Path, country: str, file_name: str, work: Path, profiles: list[Profile], scratch: list[Path],
    whole_file_encoding: bool,
) -> tuple[Profile, TextLayout, Path]:
    """Read the header as each of the country's profiles would, and keep the best match."""
    sheets: dict[str | None, Path] = {}

    def text_of(sheet: str | None) -> Path:
        if not is_xlsx(source):
            return source
        if sheet not in sheets:
            sheets[sheet] = xlsx_to_csv(source, work / f"{source.stem}.{len(sheets)}.csv", sheet)
            scratch.append(sheets[sheet])
        return sheets[sheet]

    encoding = detect_encoding(text_of(None), whole=whole_file_encoding)
    candidates: list[tuple[Profile, TextLayout, Path]] = []
    standard_text = text_of(None)
    candidates.append((STANDARD, sniff(standard_text, encoding), standard_text))
    for profile in profiles:
        if profile.country != country:
            continue
        try:
            text = text_of(profile.sheet)
            layout = sniff(text, profile.encoding or (encoding if text == standard_text else None),
                           profile.delimiter, profile.skip_lines)
        except (UnreadableText, UnicodeDecodeError):
            continue
        candidates.append((profile, layout, text))
    chosen = choose([(profile, layout.header) for profile, layout, _ in candidates], file_name)
    return next((p, layout, text) for p, layout, text in candidates if p is chosen)


@dataclass
class IngestSummary:
    received: list[Received] = field(default_factory=list)
    failed: list[tuple[InboxFile, str]] = field(default_factory=list)
    misplaced: list[Path] = field(default_factory=list)


def ingest_inbox(con: duckdb.DuckDBPyConnection, paths: Paths) -> IngestSummary:
    """Receive every inbox file; one file's failure never stops the others."""
    paths.ensure()
    discard_incomplete(con)
    summary = IngestSummary()
    profiles = load_profiles()
    for item in discover(paths):
        try:
            summary.received.append(receive(con, paths, item, profiles))
        except (OSError, duckdb.Error) as exc:
            # The file stays in the inbox for the next run; the error is reported.
            summary.failed.append((item, f"{type(exc).__name__}: {exc}"))
    summary.misplaced = misplaced(paths)
    return summary
