"""Backups of a data directory and their restore (`hmo backup`, `hmo restore`).

A backup is a folder `hmo-backup-<UTC time>/` holding archive/, events/,
outbox/, the national aliases added with `hmo aliases add` (aliases/), the
portal's accounts and audit log (portal/), the monthly reports with the
figures the next report's revisions are measured against (reports/) and
warehouse.duckdb as they were, and MANIFEST.json naming every file with its
size and sha256. The accounts are an SQLite file that `hmo serve` may be
writing: it is copied through SQLite's own backup, a consistent snapshot.
What can be made again is left out: the published copy (restore publishes
it), logs, work/ (caches and templates) and data_docs/ (the next validation of
each country writes its site again). It is written as `<name>.partial` and renamed only
once every byte is on disk, so a folder without that suffix is complete; a
restore checks every file against the manifest before it touches anything.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import duckdb

from hmo.durable import fsync_path
from hmo.errors import HmoError
from hmo.settings import Paths
from hmo.warehouse import SCHEMA_VERSION, publish

MANIFEST = "MANIFEST.json"
FORMAT = "hmo-backup"
FORMAT_VERSION = 1
PREFIX = "hmo-backup-"
PARTIAL = ".partial"
FOLDERS = ("archive", "events", "outbox", "aliases", "portal", "reports")
SQLITE_SUFFIX = ".sqlite3"
# SQLite's side files: what they hold is in the snapshot of their database.
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")
WAREHOUSE = "warehouse.duckdb"
CHUNK = 1 << 20  # 1 MiB: files may be GBs, memory stays flat


class BackupError(HmoError):
    """A backup cannot be written, or a backup cannot be restored."""


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the backup (and to the data directory), POSIX separators
    size: int
    sha256: str


@dataclass
class Manifest:
    schema_version: int
    created_at: str
    source: str
    files: list[Entry] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "source": self.source,
            "file_count": len(self.files),
            "total_bytes": self.total_bytes,
            "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.files],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Manifest":
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise BackupError(f"not an hmo backup manifest of format {FORMAT_VERSION}")
        return cls(
            schema_version=int(data["schema_version"]),
            created_at=str(data["created_at"]),
            source=str(data["source"]),
            files=[Entry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in data["files"]],
        )


@dataclass(frozen=True)
class BackupResult:
    path: Path
    files: int
    bytes: int
    schema_version: int


@dataclass(frozen=True)
class RestoreResult:
    source: Path
    files: int
    bytes: int
    counts: dict[str, int]  # files per top-level folder, and the warehouse
    schema_version: int
    replaced: Path | None  # where the data directory's previous contents were moved
    published: Path


# --- streaming, durable copies ------------------------------------------------


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _copy(source: Path, target: Path) -> tuple[str, int]:
    """Copy in chunks, hashing what is written, and fsync before returning."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK):
            dst.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    # Receipts' and archived files' times say when they arrived; keep them.
    shutil.copystat(source, target)
    return digest.hexdigest(), size


def _fsync_tree(root: Path) -> None:
    for folder, _, _ in os.walk(root):
        fsync_path(Path(folder))


def _utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


# --- backup -------------------------------------------------------------------


def _files_of(folder: Path) -> Iterator[Path]:
    """Every complete file under a folder, in a stable order.

    `.partial` files are what a crash left mid-write (archive, events): not data.
    """
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.endswith(PARTIAL) and not (
                path.name.endswith(tuple(SQLITE_SUFFIX + side for side in SQLITE_SIDE_FILES))):
            yield path


def _snapshot_sqlite(source: Path, target: Path) -> tuple[str, int]:
    """A consistent copy of a live SQLite database (its backup API waits out a writer), fsynced and hashed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())
    return _sha256(target)


def _settle_warehouse(warehouse: Path) -> int:
    """Make the file on disk the whole warehouse, and read its schema version.

    A write-ahead log (a process that did not close cleanly) is folded in as
    `hmo.warehouse.publish` does; opening the file also proves nobody is
    writing it at this moment (DuckDB locks it for a writer).
    """
    wal = warehouse.with_name(warehouse.name + ".wal")
    try:
        con = duckdb.connect(str(warehouse), read_only=not wal.exists())
    except duckdb.IOException as exc:
        raise BackupError(f"the warehouse {warehouse} is in use by another process; "
                          "back up when it ends") from exc
    try:
        if wal.exists():
            con.execute("checkpoint")
        # Aggregates: each query returns one row.
        has_schema = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'main' and table_name = 'hmo_schema'"
        ).fetchone()
        assert has_schema is not None
        version = None
        if has_schema[0]:
            found = con.execute("select max(version) from main.hmo_schema").fetchone()
            assert found is not None
            version = found[0]
    finally:
        con.close()
    # A warehouse older than the version table is version 1 (as _check_schema says).
    return int(version or 1)


def _backup_name(target: Path) -> str:
    base = f"{PREFIX}{_utc_stamp()}"
    name, n = base, 1
    while (target / name).exists() or (target / (name + PARTIAL)).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def backup(paths: Paths, target: Path) -> BackupResult:
    """Write a complete, verifiable copy of the data directory into `target`."""
    try:
        return _backup(paths, Path(target))
    except (OSError, sqlite3.Error) as exc:  # disk full, permissions, a mount gone: one line, not a traceback
        raise BackupError(f"backup into {target} failed: {exc}") from exc


def _backup(paths: Paths, target: Path) -> BackupResult:
    if _inside(target, paths.root):
        raise BackupError(f"the backup target {target} is inside the data directory {paths.root}: "
                          "choose another disk or mount")
    if not target.is_dir():
        raise BackupError(f"no such directory: {target} (is the disk mounted?)")
    if not paths.warehouse.exists():
        raise BackupError(f"no warehouse at {paths.warehouse}: nothing to back up")

    schema_version = _settle_warehouse(paths.warehouse)
    # The warehouse first: everything it names was archived before it was
    # registered, so the archive copied after it holds at least those files.
    sources = [paths.warehouse] + [f for name in FOLDERS for f in _files_of(paths.root / name)]
    needed = sum(f.stat().st_size for f in sources)
    free = shutil.disk_usage(target).free
    if needed > free:
        raise BackupError(f"{target} has {free:,} bytes free, the backup needs {needed:,}")

    name = _backup_name(target)
    partial = target / (name + PARTIAL)
    partial.mkdir()
    manifest = Manifest(schema_version, datetime.now(timezone.utc).isoformat(), str(paths.root))
    for source in sources:
        relative = source.relative_to(paths.root).as_posix()
        copy = _snapshot_sqlite if source.name.endswith(SQLITE_SUFFIX) else _copy
        sha, size = copy(source, partial / relative)
        manifest.files.append(Entry(relative, size, sha))

    with (partial / MANIFEST).open("w", encoding="utf-8") as handle:
        json.dump(manifest.to_json(), handle, indent=1, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_tree(partial)
    final = target / name
    partial.rename(final)
    fsync_path(target)
    return BackupResult(final, len(manifest.files), manifest.total_bytes, schema_version)


# --- restore ------------------------------------------------------------------


def _safe_relative(relative: str) -> Path:
    # A manifest is read from another disk: it must not place files outside the data directory.
    path = Path(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts or (
        path.parts[0] not in FOLDERS and relative != WAREHOUSE
    ):
        raise BackupError(f"the manifest names an unexpected file: {relative}")
    return path


def verify(backup_dir: Path) -> Manifest:
    """Check a backup is complete and intact; name the first file that is not."""
    backup_dir = Path(backup_dir)
    if backup_dir.name.endswith(PARTIAL):
        raise BackupError(f"{backup_dir} is an unfinished backup (it was interrupted): not restoring it")
    if not backup_dir.is_dir():
        raise BackupError(f"no such backup: {backup_dir}")
    manifest_path = backup_dir / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{backup_dir} has no {MANIFEST}: not a complete backup")
    try:
        manifest = Manifest.from_json(json.loads(manifest_path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{manifest_path} is damaged: {exc}") from exc
    if manifest.schema_version != SCHEMA_VERSION:
        raise BackupError(
            f"the backup {backup_dir} holds a warehouse of schema version {manifest.schema_version}, "
            f"this Observatory needs {SCHEMA_VERSION}: restore it with the version that wrote it, "
            "or restore its archive and events and run `hmo rebuild`"
        )
    if not any(entry.path == WAREHOUSE for entry in manifest.files):
        raise BackupError(f"the backup {backup_dir} has no {WAREHOUSE} in its manifest")
    for entry in manifest.files:
        file = backup_dir / _safe_relative(entry.path)
        if not file.is_file():
            raise BackupError(f"the backup is damaged: {entry.path} is missing")
        if file.stat().st_size != entry.size:
            raise BackupError(f"the backup is damaged: {entry.path} has {file.stat().st_size} bytes, "
                              f"the manifest says {entry.size}")
        if _sha256(file)[0] != entry.sha256:
            raise BackupError(f"the backup is damaged: {entry.path} does not match its sha256")
    return manifest


def _occupants(paths: Paths) -> list[Path]:
    """What of the data directory a restore would overwrite."""
    candidates = [paths.warehouse, paths.warehouse.with_name(WAREHOUSE + ".wal"), paths.published]
    found = [p for p in candidates if p.exists()]
    found += [paths.root / name for name in FOLDERS
              if (paths.root / name).is_dir() and any((paths.root / name).iterdir())]
    return found


def _move_aside(paths: Paths, occupants: list[Path]) -> Path:
    """Keep what was there: moved, never deleted (same filesystem, so renames)."""
    aside = paths.root / f"replaced-{_utc_stamp()}"
    n = 1
    while aside.exists():
        n += 1
        aside = paths.root / f"replaced-{_utc_stamp()}-{n}"
    for path in occupants:
        destination = aside / path.relative_to(paths.root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        path.replace(destination)
    _fsync_tree(aside)
    fsync_path(paths.root)
    return aside


def restore(paths: Paths, backup_dir: Path, force: bool = False) -> RestoreResult:
    """Bring a verified backup back into the data directory and publish its warehouse."""
    try:
        return _restore(paths, Path(backup_dir), force)
    except OSError as exc:
        raise BackupError(f"restore from {backup_dir} failed: {exc}") from exc


def _restore(paths: Paths, backup_dir: Path, force: bool) -> RestoreResult:
    if _inside(backup_dir, paths.root):
        raise BackupError(f"the backup {backup_dir} is inside the data directory {paths.root}: "
                          "move it elsewhere first")
    manifest = verify(backup_dir)

    occupants = _occupants(paths)
    if occupants and not force:
        names = ", ".join(p.relative_to(paths.root).as_posix() for p in occupants)
        raise BackupError(f"the data directory {paths.root} already holds {names}: "
                          "restore with --force to move them aside into replaced-<time>/")
    paths.root.mkdir(parents=True, exist_ok=True)

    # Staged inside the data directory (same filesystem), then put in place by
    # renames: an interrupted restore leaves a staging folder, not half a folder
    # that looks like data.
    staging = paths.root / f"restoring-{_utc_stamp()}{PARTIAL}"
    if staging.exists():
        raise BackupError(f"{staging} exists: another restore is running or was interrupted")
    staging.mkdir()
    for entry in manifest.files:
        sha, size = _copy(backup_dir / entry.path, staging / entry.path)
        # Verified a moment ago; checked again so that bytes changed since then never land.
        if (sha, size) != (entry.sha256, entry.size):
            raise BackupError(f"{entry.path} changed in the backup while it was being restored")
    _fsync_tree(staging)

    replaced = _move_aside(paths, occupants) if occupants else None
    for name in FOLDERS:
        staged = staging / name
        if staged.exists():
            staged.replace(paths.root / name)
    # The warehouse last: a data directory with a warehouse is a finished restore.
    (staging / WAREHOUSE).replace(paths.warehouse)
    fsync_path(paths.root)
    staging.rmdir()  # empty by now: only the renamed-away folders were in it
    paths.ensure()
    published = publish(paths.warehouse, paths.published)

    counts: dict[str, int] = {}
    for entry in manifest.files:
        top = entry.path.split("/", 1)[0]
        counts[top] = counts.get(top, 0) + 1
    return RestoreResult(backup_dir, len(manifest.files), manifest.total_bytes, counts,
                         manifest.schema_version, replaced, published)
