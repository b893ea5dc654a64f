"""From a file in the inbox to a registered submission with its rows in `raw`.

Order matters for never losing a file: the bytes are archived first, then the
arrival is logged (hmo.events) and the registry and rows written, and only
then does the file leave the inbox. A crash in between leaves the file in the
inbox, and the next run recognises the same bytes as already received.

Only regular files directly in inbox/<member ISO3>/ are read, and nothing in
the inbox is followed: entries are listed by lstat and opened with O_NOFOLLOW,
so a link cannot make the Observatory read, archive or delete a file that is
not the country's own. Everything else is a Refusal, left where it is.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import duckdb

from hmo import events
from ingest import raw_lake, transform
from ingest.column_names import column_names_json
from hmo.durable import fsync_path
from hmo.errors import HmoError
from ingest.profiles import STANDARD, Profile, YearNotFound, choose, load_profiles
from hmo.settings import ISO3_MEMBERS, Paths
from ingest.sniff import TextLayout, UnreadableText, detect_encoding, is_xlsx, sniff, to_utf8, xlsx_to_csv

# One line per inbox file as it is read: `hmo run` shows it as progress and keeps it in the run's log.
log = logging.getLogger(__name__)
_CHUNK = 1 << 20
# Every open of an inbox entry: a link is refused by the kernel (ELOOP), and a
# pipe or device opens without waiting for a writer, so fstat can turn it away.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
# Browsers' and uploaders' names for a file still arriving (.partial: old Edge and
# Firefox; also the archive's own name for a copy not yet complete).
_UNFINISHED = re.compile(r"\.(part|partial|tmp|crdownload)$", re.IGNORECASE)
# The archive name keeps the sender's extension only when it looks like one.
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")
# Outside the country folders the inbox is walked only to say what is not
# read; a tree deeper or larger than this is reported by the folder where the
# walk stopped.
_MAX_DEPTH = 4
_MAX_ENTRIES = 10_000

SYMLINK = "enlace simbólico: no se sigue / symbolic link: not followed"
TOP_LEVEL = ("fuera de una carpeta de país: los archivos van en inbox/<ISO3>/ / "
             "not in a country folder: files go in inbox/<ISO3>/")
HIDDEN = "archivo oculto: no se lee / hidden file: not read"
OFFICE_LOCK = ("archivo de bloqueo de Office (el documento está abierto): no se lee / "
               "Office lock file (the document is open): not read")
TOO_DEEP = (f"carpetas anidadas a más de {_MAX_DEPTH} niveles: no se recorren / "
            f"folders nested more than {_MAX_DEPTH} levels deep: not walked")
TOO_MANY = (f"más de {_MAX_ENTRIES} entradas fuera de las carpetas de país: esta carpeta no se recorre / "
            f"more than {_MAX_ENTRIES} entries outside the country folders: this folder is not walked")
_KIND_REASONS = {
    "link": SYMLINK,
    "pipe": "una tubería (FIFO), no un archivo: no se abre / a pipe (FIFO), not a file: not opened",
    "socket": "un socket, no un archivo: no se abre / a socket, not a file: not opened",
    "device": "un dispositivo, no un archivo: no se abre / a device, not a file: not opened",
    "folder": "una carpeta, no un archivo: no se lee / a folder, not a file: not read",
    "file": "un archivo, no una carpeta: no se lee / a file, not a folder: not read",
}


def not_a_member(folder: str) -> str:
    folder = as_text(folder)
    return (f"la carpeta {folder} no es el código ISO3 de un país miembro de la CRM o la CSM: no se lee / "
            f"the folder {folder} is not the ISO3 code of an RCM or SACM member country: not read")


def unfinished_upload(suffix: str) -> str:
    return (f"subida sin terminar: se leerá cuando el archivo se renombre sin {suffix} / "
            f"unfinished upload: it will be read once the file is renamed without {suffix}")


def in_subfolder(country_folder: str) -> str:
    return (f"en una subcarpeta: solo se leen los archivos que están directamente en inbox/{country_folder}/ / "
            f"in a subfolder: only files directly in inbox/{country_folder}/ are read")


def a_subfolder(country_folder: str) -> str:
    return (f"una carpeta, no un archivo: solo se leen los archivos que están directamente en "
            f"inbox/{country_folder}/ / a folder, not a file: only files directly in inbox/{country_folder}/ are read")


def unlistable(error: OSError) -> str:
    return f"no se puede leer la carpeta ({error.strerror}) / the folder cannot be listed ({error.strerror})"


def as_text(path: str) -> str:
    """A name as text: bytes that are not UTF-8 (a name made on a Windows-1252 machine, say),
    which Python keeps as surrogates no table or receipt can hold, written as \\xNN."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


@dataclass(frozen=True)
class InboxFile:
    country: str
    path: Path

    @property
    def file_name(self) -> str:
        return as_text(self.path.name)


@dataclass(frozen=True)
class Refusal:
    """Something in the inbox that is not read, and why. It is never opened, moved or deleted."""

    path: Path  # relative to the inbox
    reason: str  # Spanish / English

    @property
    def shown(self) -> str:
        return as_text(self.path.as_posix())


@dataclass
class Received:
    submission_id: int  # for a duplicate: the original submission
    country: str
    file_name: str
    duplicate_of: int | None = None  # the original submission, when these bytes came before
    duplicate_id: int | None = None  # raw.duplicates row to answer, when they did
    notes: list[str] = field(default_factory=list)


@dataclass
class LoadOutcome:
    encoding: str | None = None
    delimiter: str | None = None
    profile: str | None = None
    sum_duplicates: bool = False
    missing_columns: list[str] = field(default_factory=list)
    duplicate_columns: list[str] = field(default_factory=list)
    source_columns: list[str] = field(default_factory=list)
    column_names: str | None = None  # JSON: standard column -> header as the file writes it
    read_error: str | None = None
    data_rows: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class InboxScan:
    files: list[InboxFile] = field(default_factory=list)  # oldest first
    refused: list[Refusal] = field(default_factory=list)


class FileChanged(OSError):
    """The file's bytes changed while it was read: it stays in the inbox for the next run."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def name_refusal(name: str) -> str | None:
    """Why a file in a country folder is not read from its name alone, if it is not."""
    if name.startswith("."):
        return HIDDEN
    if name.startswith("~$"):
        return OFFICE_LOCK
    unfinished = _UNFINISHED.search(name)
    if unfinished:
        return unfinished_upload(unfinished.group(0))
    return None


class _Walker:
    """Lists inbox folders by lstat alone: no entry is followed, opened or waited on."""

    def __init__(self, inbox: Path) -> None:
        self.inbox = inbox
        self.left = _MAX_ENTRIES

    def scan(self, folder: Path, limit: int | None = None) -> list[tuple[Path, str, float]]:
        """(path relative to the inbox, kind, mtime) of the folder's entries, by name."""
        found: list[tuple[Path, str, float]] = []
        with os.scandir(self.inbox / folder) as entries:
            for entry in entries:
                if limit is not None and len(found) > limit:
                    break
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # gone since the listing
                    continue
                found.append((folder / entry.name, _kind(info.st_mode), info.st_mtime))
        return sorted(found)

    def refuse_tree(self, folder: Path, file_reason: str, folder_reason: str | None) -> list[Refusal]:
        """Everything under a folder that is not read: its files, or the folder itself when
        nothing under it is listed (unreadable, too deep, past the walk's bound, or empty
        and given a `folder_reason`: a folder where a file was expected)."""
        if len(folder.parts) > _MAX_DEPTH:
            return [Refusal(folder, TOO_DEEP)]
        try:
            listing = self.scan(folder, limit=self.left)
        except OSError as exc:
            return [Refusal(folder, unlistable(exc))]
        if not listing:
            return [Refusal(folder, folder_reason)] if folder_reason else []
        refused: list[Refusal] = []
        for path, kind, _ in listing:
            if self.left <= 0:
                refused.append(Refusal(folder, TOO_MANY))
                break
            self.left -= 1
            if kind == "folder":
                refused += self.refuse_tree(path, file_reason, folder_reason)
            else:
                refused.append(Refusal(path, file_reason if kind == "file" else _KIND_REASONS[kind]))
        return refused

    def country_folder(self, folder: Path, country: str) -> tuple[list[tuple[float, InboxFile]], list[Refusal]]:
        """Regular files directly in inbox/<member>/ are read; everything else there is refused."""
        try:
            listing = self.scan(folder)
        except OSError as exc:
            return [], [Refusal(folder, unlistable(exc))]
        files: list[tuple[float, InboxFile]] = []
        refused: list[Refusal] = []
        for path, kind, mtime in listing:
            if kind == "folder":
                refused += self.refuse_tree(path, in_subfolder(folder.name), a_subfolder(folder.name))
            elif kind != "file":
                refused.append(Refusal(path, _KIND_REASONS[kind]))
            elif reason := name_refusal(path.name):
                refused.append(Refusal(path, reason))
            else:
                files.append((mtime, InboxFile(country, self.inbox / path)))
        return files, refused


def scan(paths: Paths) -> InboxScan:
    """What the inbox holds: the files to read, oldest first so revisions apply in order of
    arrival, and everything else with the reason it is not read."""
    walker = _Walker(paths.inbox)
    try:
        top = walker.scan(Path())
    except FileNotFoundError:
        return InboxScan()
    files: list[tuple[float, InboxFile]] = []
    refused: list[Refusal] = []
    for path, kind, _ in top:
        if kind == "folder" and path.name.upper() in ISO3_MEMBERS:
            found, refused_here = walker.country_folder(path, path.name.upper())
            files += found
            refused += refused_here
        elif kind == "folder":
            # Its files are reported; an empty folder there holds nothing to lose.
            refused += walker.refuse_tree(path, not_a_member(path.name), None)
        else:
            refused.append(Refusal(path, TOP_LEVEL if kind == "file" else _KIND_REASONS[kind]))
    files.sort(key=lambda f: (f[0], f[1].country, f[1].path.name))
    return InboxScan([item for _, item in files], sorted(refused, key=lambda r: r.path.as_posix()))


def discover(paths: Paths) -> list[InboxFile]:
    """Files waiting in inbox/<member ISO3>/, oldest first."""
    return scan(paths).files


def sha256_of(handle: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    handle.seek(0)
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _copy_bytes(source: BinaryIO, sink: BinaryIO) -> int:
    """Copy all of source into sink in the kernel; the bytes copied.

    sendfile: 0.13 s for a 495 MB file here, against 1.0 s through Python's
    buffers (docs/benchmarks.md). Where the kernel cannot (an old kernel, an
    unusual file system), the copy goes through Python.
    """
    copied = 0
    try:
        while sent := os.sendfile(sink.fileno(), source.fileno(), copied, 1 << 30):
            copied += sent
    except OSError as exc:
        if copied or exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        source.seek(0)
        shutil.copyfileobj(source, sink, _CHUNK)
        copied = sink.tell()
    return copied


@dataclass
class _Staged:
    """An inbox file's bytes copied into its country's archive folder, not yet under their name."""

    partial: Path
    sha256: str
    size: int

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)


def _stage_in_archive(paths: Paths, country: str, handle: BinaryIO, opened: os.stat_result) -> _Staged:
    """Copy the open inbox file into the archive and hash the copy: one read of the file.

    The hash is of the archived bytes themselves, so an archive file always
    holds what its name says. A file whose size or modification time moved
    while it was copied (an upload still being written) is not archived: it
    stays in the inbox for the next run.
    """
    folder = paths.archive / country
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".receiving-", suffix=".partial")
    staged = _Staged(Path(name), "", 0)
    try:
        with os.fdopen(fd, "w+b") as sink:
            staged.size = _copy_bytes(handle, sink)
            staged.sha256, _ = sha256_of(sink)
            sink.flush()
            os.fsync(sink.fileno())
        if staged.size != opened.st_size or not _same_file(os.fstat(handle.fileno()), opened):
            raise FileChanged("the file changed while it was read (still being written?); "
                              "it stays in the inbox for the next run")
    except BaseException:
        staged.discard()
        raise
    return staged


def discard_staged(paths: Paths) -> int:
    """Remove copies a killed run left half-staged in the archive (the one writer runs this, so none is live)."""
    left = list(paths.archive.glob("*/.receiving-*.partial")) if paths.archive.is_dir() else []
    for path in left:
        path.unlink(missing_ok=True)
    return len(left)


def _archive(paths: Paths, country: str, staged: _Staged, suffix: str) -> Path:
    """Name the staged copy by its hash, on disk before anything names it."""
    suffix = suffix.lower() if _SUFFIX.match(suffix) else ""
    target = paths.archive / country / f"{staged.sha256}{suffix}"
    if target.exists():  # the same bytes, archived by a run that died before registering them
        staged.discard()
        return target
    staged.partial.replace(target)
    fsync_path(target.parent)
    return target


class _Refused(Exception):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.path, self.reason = path, reason


def _open_unfollowed(name: str | Path, shown: Path, wanted: Callable[[int], bool],
                     dir_fd: int | None = None) -> int:
    try:
        fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Refused(shown, SYMLINK) from None
        raise
    mode = os.fstat(fd).st_mode
    if not wanted(mode):
        os.close(fd)
        raise _Refused(shown, _KIND_REASONS[_kind(mode)])
    return fd


@contextlib.contextmanager
def _open_in_inbox(path: Path) -> Iterator[tuple[int, BinaryIO, os.stat_result]]:
    """(folder descriptor, file, its fstat) for an inbox file, opened following no link.

    The folder is opened too and the file found through it, so neither the
    file nor its country folder swapped for a link since discovery can make
    this read another file; all reading and the final unlink go through these
    descriptors. Raises _Refused for what is not a regular file in a real folder.
    """
    folder_fd = _open_unfollowed(path.parent, path.parent, stat.S_ISDIR)
    try:
        fd = _open_unfollowed(path.name, path, stat.S_ISREG, dir_fd=folder_fd)
        with os.fdopen(fd, "rb") as handle:
            yield folder_fd, handle, os.fstat(fd)
    finally:
        os.close(folder_fd)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns)


def _leave_inbox(folder_fd: int, name: str, opened: os.stat_result) -> None:
    """Unlink the inbox entry, if it is still the file that was read.

    A file replaced or rewritten since it was opened stays for the next run:
    its present bytes were not archived. Unlinking a name never follows a link.
    """
    try:
        present = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if _same_file(present, opened):
        os.unlink(name, dir_fd=folder_fd)


def _relative(paths: Paths, path: Path) -> Path:
    try:
        return path.relative_to(paths.inbox)
    except ValueError:
        return Path(path.name)


# Ids are taken inside the statement that writes them: DuckDB 1.5 logs a
# sequence's advance only with a write that uses it, so after a crash a
# `select nextval()` of its own is forgotten and the next run would hand out
# ids already in use (found by bench/kill.py; tests/ingest/test_submissions.py
# kills a process to check it).
def _record_duplicate(con: duckdb.DuckDBPyConnection, original: int, item: InboxFile) -> int:
    """Keep the answer owed for a file already received: the receipts stage answers each row once."""
    inserted = con.execute(
        "insert into raw.duplicates (duplicate_id, submission_id, reporting_country, file_name, received_at)"
        " values (nextval('raw.duplicate_id_seq'), ?, ?, ?, current_timestamp) returning duplicate_id",
        [original, item.country, item.file_name],
    ).fetchone()
    assert inserted is not None  # `returning` gives the row inserted
    return inserted[0]


def _register(con: duckdb.DuckDBPyConnection, paths: Paths, item: InboxFile, sha: str, size: int,
              archived: Path) -> int:
    """Register the arrival as 'loading' (rows may be incomplete until 'received'), then log it.

    The event log, beside the archive, is what `hmo rebuild` replays. A crash
    before the event leaves only the 'loading' row, which discard_incomplete()
    removes while the file is still in the inbox, to be received again.
    """
    received_at = datetime.now(timezone.utc)
    submission_id = _insert_loading(con, None, item.country, item.file_name, archived, sha, size, received_at)
    events.record(
        paths, "received", submission_id=submission_id, reporting_country=item.country,
        file_name=item.file_name, sha256=sha, archive_path=archived.relative_to(paths.root).as_posix(),
        size_bytes=size, received_at=received_at.isoformat(),
    )
    return submission_id


def _insert_loading(con: duckdb.DuckDBPyConnection, submission_id: int | None, country: str, file_name: str,
                    archived: Path, sha: str, size: int, received_at: datetime | str) -> int:
    """A new registry row; its id from the sequence unless given (a replay keeps the log's)."""
    id_sql = "nextval('raw.submission_id_seq')" if submission_id is None else str(int(submission_id))
    inserted = con.execute(
        f"""
        insert into raw.submissions (submission_id, reporting_country, file_name, archive_path,
                                     sha256, size_bytes, received_at, load_state)
        values ({id_sql}, ?, ?, ?, ?, ?, ?, 'loading')
        returning submission_id
        """,
        [country, file_name, str(archived), sha, size, received_at],
    ).fetchone()
    assert inserted is not None  # `returning` gives the row inserted
    return inserted[0]


def replay_received(con: duckdb.DuckDBPyConnection, paths: Paths, event: dict,
                    profiles: list[Profile]) -> int:
    """Load an archived file again as its `received` event recorded it (for `hmo rebuild`)."""
    archived = paths.root / event["archive_path"]
    if not archived.is_file():
        raise FileNotFoundError(f"the archived file {archived} is missing")
    _insert_loading(con, event["submission_id"], event["reporting_country"], event["file_name"], archived,
                    event["sha256"], event["size_bytes"], event["received_at"])
    outcome = load_file(con, event["submission_id"], archived, event["reporting_country"], event["file_name"],
                        paths.work, profiles)
    if "revalidates" in event:
        outcome.notes = [*(outcome.notes or []), _revalidation_note(event["revalidates"], event["requested_by"])]
    _record_outcome(con, paths, event["submission_id"], outcome)
    return event["submission_id"]


def receive_again(con: duckdb.DuckDBPyConnection, paths: Paths, submission_id: int, requested_by: str,
                  profiles: list[Profile] | None = None) -> int:
    """Load a rejected submission's archived bytes again as a new submission (`hmo revalidate`).

    The statistician need not send the file again once the Observatory has
    fixed what rejected it (an alias, a profile). The rejected submission and
    its receipt stay as they were; the new one gets its own verdict and receipt.
    """
    row = con.execute(
        "select reporting_country, file_name, archive_path, sha256, size_bytes, status "
        "from marts.fct_submissions where submission_id = ?",
        [submission_id],
    ).fetchone()
    if row is None:
        raise RevalidationRefused(f"there is no submission {submission_id}")
    country, file_name, archive_path, sha, size, status = row
    if status != "rejected":
        raise RevalidationRefused(f"submission {submission_id} ({country}/{file_name}) is {status}, not rejected: "
                                  "only a rejected submission is validated again")
    archived = Path(archive_path)
    with archived.open("rb") as handle:
        if sha256_of(handle)[0] != sha:
            raise RevalidationRefused(f"{archived} no longer holds the bytes of submission {submission_id}")
    received_at = datetime.now(timezone.utc)
    new_id = _insert_loading(con, None, country, file_name, archived, sha, size, received_at)
    events.record(
        paths, "received", submission_id=new_id, reporting_country=country, file_name=file_name, sha256=sha,
        archive_path=archived.relative_to(paths.root).as_posix(), size_bytes=size,
        received_at=received_at.isoformat(), revalidates=submission_id, requested_by=requested_by,
    )
    outcome = load_file(con, new_id, archived, country, file_name, paths.work,
                        load_profiles() if profiles is None else profiles)
    outcome.notes = [*(outcome.notes or []), _revalidation_note(submission_id, requested_by)]
    _record_outcome(con, paths, new_id, outcome)
    return new_id


def _revalidation_note(submission_id: int, requested_by: str) -> str:
    return (f"re-validation of submission {submission_id} requested by {requested_by} / "
            f"nueva validación del envío {submission_id} solicitada por {requested_by}")


class RevalidationRefused(HmoError):
    """`hmo revalidate` of a submission that is not rejected, or whose bytes are gone."""


def _record_outcome(con: duckdb.DuckDBPyConnection, paths: Paths, submission_id: int, outcome: LoadOutcome) -> None:
    """The submission is received: its registry row whole, and the raw layer's Parquet copy written."""
    con.execute(
        """
        update raw.submissions
        set encoding = ?, delimiter = ?, profile = ?, source_columns = ?, column_names = ?, missing_columns = ?,
            duplicate_columns = ?, read_error = ?, data_rows = ?, notes = ?, sum_duplicates = ?,
            load_state = 'received'
        where submission_id = ?
        """,
        [
            outcome.encoding, outcome.delimiter, outcome.profile, outcome.source_columns, outcome.column_names,
            outcome.missing_columns, outcome.duplicate_columns, outcome.read_error, outcome.data_rows,
            outcome.notes, outcome.sum_duplicates, submission_id,
        ],
    )
    raw_lake.write_received(con, paths, submission_id)


def receive(con: duckdb.DuckDBPyConnection, paths: Paths, item: InboxFile,
            profiles: list[Profile] | None = None) -> Received | Refusal:
    """Archive, register and load one inbox file, then take it out of the inbox.

    What turns out not to be a regular file in a real folder when opened (a
    link or pipe swapped in since discovery) is a Refusal, left in place.
    """
    try:
        with _open_in_inbox(item.path) as (folder_fd, handle, opened):
            staged = _stage_in_archive(paths, item.country, handle, opened)
            try:
                existing = con.execute(
                    # the latest: after `hmo revalidate` the same bytes have two submissions
                    "select max(submission_id) from raw.submissions where reporting_country = ? and sha256 = ? "
                    "having count(*) > 0",
                    [item.country, staged.sha256],
                ).fetchone()
                if existing:
                    staged.discard()
                    # Recorded before the file goes: a crash in between answers it twice, never not at all.
                    duplicate_id = _record_duplicate(con, existing[0], item)
                    _leave_inbox(folder_fd, item.path.name, opened)
                    return Received(existing[0], item.country, item.file_name, duplicate_of=existing[0],
                                    duplicate_id=duplicate_id)
                archived = _archive(paths, item.country, staged, item.path.suffix)
            except BaseException:
                staged.discard()
                raise
            submission_id = _register(con, paths, item, staged.sha256, staged.size, archived)
            outcome = load_file(con, submission_id, archived, item.country, item.file_name, paths.work,
                                load_profiles() if profiles is None else profiles)
            _record_outcome(con, paths, submission_id, outcome)
            _leave_inbox(folder_fd, item.path.name, opened)
    except _Refused as refused:
        return Refusal(_relative(paths, refused.path), refused.reason)
    return Received(submission_id, item.country, item.file_name, notes=outcome.notes)


def discard_incomplete(con: duckdb.DuckDBPyConnection) -> int:
    """Forget submissions a crash left half-loaded; their files are still in the inbox."""
    stale = [row[0] for row in con.execute(
        "select submission_id from raw.submissions where load_state = 'loading'"
    ).fetchall()]
    for submission_id in stale:
        con.execute("delete from raw.observations where submission_id = ?", [submission_id])
        con.execute("delete from raw.load_failures where submission_id = ?", [submission_id])
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
        outcome.column_names = column_names_json(chosen, layout.header)  # receipts name columns as the file does
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
        try:
            year = chosen.year_of(file_name, list(layout.preamble))
        except YearNotFound as exc:
            outcome.read_error = str(exc)  # S01: the file is not what its profile describes
            return outcome
        mapping = transform.plan(chosen, layout.header, country, relation, year=year)
        outcome.missing_columns = mapping.missing
        outcome.duplicate_columns = mapping.named_twice
        outcome.notes += [f"ignored column: {name!r}" for name in mapping.ignored]
        if not chosen.is_standard:
            outcome.notes.insert(0, f"profile: {chosen.name} ({chosen.path.name if chosen.path else ''})")
        if mapping.missing or mapping.named_twice:
            # Nothing of a file whose columns are not all there, once each, is loaded (S02).
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
            # An insert answers with its row count: no second scan of the rows to count them.
            inserted = con.execute(
                f"insert into raw.observations select {int(submission_id)}, * from ({mapping.sql})").fetchone()
            assert inserted is not None
            if mapping.month_totals:  # C01 on a total over months, which no row can hold (transform._month_totals)
                con.execute(f"insert into raw.load_failures select {int(submission_id)}, * from ({mapping.month_totals})")
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
        outcome.data_rows = inserted[0]
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
    received: list[Received] = field(default_factory=list)  # new submissions and duplicates
    failed: list[tuple[InboxFile, str]] = field(default_factory=list)  # left in the inbox, tried again
    refused: list[Refusal] = field(default_factory=list)  # left in place, never read


def record_refusals(con: duckdb.DuckDBPyConnection, refused: list[Refusal]) -> None:
    """Make raw.refused_files what the inbox holds now; a path still refused keeps its first_seen."""
    current = {refusal.shown: refusal.reason for refusal in refused}
    con.execute("begin transaction")
    try:
        con.execute(
            "create or replace temp table hmo_refused as "
            "select unnest(?::varchar[]) as path, unnest(?::varchar[]) as reason",
            [list(current), list(current.values())],
        )
        con.execute("delete from raw.refused_files where path not in (select path from hmo_refused)")
        con.execute(
            """
            insert into raw.refused_files (path, reason, first_seen, last_seen)
            select path, reason, current_timestamp, current_timestamp from hmo_refused
            on conflict (path) do update set reason = excluded.reason, last_seen = excluded.last_seen
            """
        )
        con.execute("drop table hmo_refused")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def ingest_inbox(con: duckdb.DuckDBPyConnection, paths: Paths) -> IngestSummary:
    """Receive every inbox file; one file's failure never stops the others."""
    paths.ensure()
    discard_incomplete(con)
    discard_staged(paths)
    raw_lake.write_missing(con, paths)  # what a crash or a full disk kept from the Parquet copy last time
    inbox = scan(paths)
    summary = IngestSummary(refused=list(inbox.refused))
    profiles = load_profiles()
    for number, item in enumerate(inbox.files, 1):
        log.info("reading %s/%s (%d of %d)", item.country, item.file_name, number, len(inbox.files))
        try:
            outcome = receive(con, paths, item, profiles)
        except (OSError, duckdb.Error) as exc:
            # The file stays in the inbox for the next run; the error is reported.
            summary.failed.append((item, f"{type(exc).__name__}: {exc}"))
            continue
        if isinstance(outcome, Refusal):
            summary.refused.append(outcome)
        else:
            summary.received.append(outcome)
    summary.refused.sort(key=lambda refusal: refusal.path.as_posix())
    record_refusals(con, summary.refused)
    return summary
