"""`hmo backup` and `hmo restore` on real files and a real DuckDB warehouse."""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import drop_sample
from flows import backup as backup_module
from flows.cli import main
from hmo import events
from hmo.settings import Paths
from ingest.submissions import ingest_inbox
from hmo.warehouse import connect
from portal import audit as portal_audit
from portal.accounts import Accounts

TABLES = ("raw.submissions", "raw.observations", "marts.fct_flows")


def files_under(root: Path, *folders: str) -> dict[str, bytes]:
    """Every file of the named folders (all of root if none), by relative path."""
    tops = [root / f for f in folders] if folders else [root]
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for top in tops if top.exists() for p in sorted(top.rglob("*")) if p.is_file()}


def digest_tree(root: Path) -> dict[str, str]:
    # writer.lock is the CLI's lock (flows.writer), touched by every writing command: not data.
    return {name: hashlib.sha256(data).hexdigest() for name, data in files_under(root).items()
            if name != "writer.lock"}


def table_rows(database: Path, tables: tuple[str, ...]) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return {t: con.execute(f"select * from {t} order by all").fetchall() for t in tables}
    finally:
        con.close()


def only_backup(target: Path) -> Path:
    [made] = list(target.iterdir())
    return made


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def small(paths: Paths) -> Paths:
    """A data directory with one received submission, one event and one receipt (no Prefect)."""
    drop_sample(paths, "PAN")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    con.close()
    events.record(paths, "received", submission_id=1, country="PAN")
    receipt = paths.outbox / "PAN" / "sample.1.accepted.json"
    receipt.parent.mkdir(parents=True, exist_ok=True)
    receipt.write_text('{"status": "accepted"}', encoding="utf-8")
    return paths


@pytest.fixture
def target(tmp_path: Path) -> Path:
    folder = tmp_path / "backups"  # beside the data directory, not inside it
    folder.mkdir()
    return folder


def test_restore_drill_brings_back_every_file_and_the_same_warehouse(
        prefect_server, paths: Paths, target: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flows.pipeline import hmo_run

    drop_sample(paths, "PAN")
    drop_sample(paths, "MEX")
    hmo_run(str(paths.root))
    events.record(paths, "verdict", submission_id=1, status="accepted")  # whatever the pipeline logs, one at least
    # A country's account (the portal's SQLite file, opened by `hmo serve` meanwhile) and its audit line.
    accounts = Accounts(paths)
    password = accounts.add("PAN", "ana@migracion.gob.pa", "a long passphrase 2024")
    portal_audit.record(paths, "sign_in", "ana@migracion.gob.pa", "PAN", "127.0.0.1")
    (paths.aliases / "PAN.csv").parent.mkdir(parents=True, exist_ok=True)
    (paths.aliases / "PAN.csv").write_text("name,code\nPanamá,PAN\n", encoding="utf-8")
    held_open = sqlite3.connect(accounts.path)  # a live connection, as the service keeps
    folders = ("archive", "events", "outbox", "aliases", "portal", "reports")
    before_files = files_under(paths.root, *folders)
    assert {name.split("/")[0] for name in before_files} == set(folders)
    before_rows = table_rows(paths.warehouse, TABLES)
    assert any(name.startswith("archive/") for name in before_files)
    assert any(name.startswith("outbox/") for name in before_files)
    assert before_rows["marts.fct_flows"]

    started = time.perf_counter()
    code, out, err = run_cli(["backup", str(target)], capsys)
    backed_up = time.perf_counter() - started
    assert code == 0, err
    made = only_backup(target)
    assert made.name.startswith("hmo-backup-") and f"backup: {made}" in out
    manifest = json.loads((made / "MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["schema_version"] == backup_module.SCHEMA_VERSION
    assert {f["path"] for f in manifest["files"]} == set(before_files) | {"warehouse.duckdb"}
    held_open.close()
    assert f"{len(manifest['files'])} files, {manifest['total_bytes']:,} bytes" in out

    shutil.rmtree(paths.root)  # the disk is gone

    started = time.perf_counter()
    code, out, err = run_cli(["restore", str(made)], capsys)
    restored = time.perf_counter() - started
    assert code == 0, err
    assert f"restored {len(manifest['files'])} files" in out

    restored_files = files_under(paths.root, *folders)
    assert set(restored_files) == set(before_files)
    # The accounts come back through SQLite's backup (a snapshot, not the same bytes); everything else as it was.
    assert {k: v for k, v in restored_files.items() if not k.endswith(".sqlite3")} == \
        {k: v for k, v in before_files.items() if not k.endswith(".sqlite3")}
    _, session = Accounts(paths).sign_in("ana@migracion.gob.pa", password)  # the country can still sign in
    assert session.user.scope == "PAN"
    assert table_rows(paths.warehouse, TABLES) == before_rows
    assert table_rows(paths.published, TABLES) == before_rows
    assert events.read_all(paths) and paths.inbox.is_dir()
    # Readers answer from the published copy through the CLI as well.
    code, out, err = run_cli(["sql", "select count(*) as n from raw.submissions", "--format", "csv"], capsys)
    assert code == 0 and out == f"n\n{len(before_rows['raw.submissions'])}\n"
    print(f"\nsample data: backup {backed_up:.2f}s, restore {restored:.2f}s, "
          f"{len(manifest['files'])} files, {manifest['total_bytes']:,} bytes")


def test_backup_checkpoints_a_left_over_wal_and_skips_unfinished_files(small: Paths, target: Path) -> None:
    # A writer that dies without closing leaves its last changes in the WAL only.
    crash = (
        "import duckdb, os, sys\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "con.execute(\"set checkpoint_threshold = '1TB'\")\n"
        "con.execute('create table main.after_crash as select 42 as answer')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(small.warehouse)], check=True)
    wal = small.warehouse.with_name("warehouse.duckdb.wal")
    assert wal.exists()
    (small.events / "20990101T000000000000-verdict-crashed.json.partial").write_text("{", encoding="utf-8")

    result = backup_module.backup(small, target)

    assert not wal.exists()
    names = {f["path"] for f in json.loads((result.path / "MANIFEST.json").read_text())["files"]}
    assert not any(name.endswith(".partial") or name.endswith(".wal") for name in names)
    con = duckdb.connect(str(result.path / "warehouse.duckdb"), read_only=True)
    assert con.execute("select answer from main.after_crash").fetchall() == [(42,)]
    con.close()


def _flip_a_byte(made: Path) -> str:
    archived = next(p for p in sorted((made / "archive").rglob("*")) if p.is_file())
    data = bytearray(archived.read_bytes())
    data[len(data) // 2] ^= 0x01
    archived.write_bytes(bytes(data))
    return archived.relative_to(made).as_posix()


def _remove_an_event(made: Path) -> str:
    event = next((made / "events").glob("*.json"))
    event.unlink()
    return event.relative_to(made).as_posix()


@pytest.mark.parametrize("damage, expected", [
    (_flip_a_byte, "does not match its sha256"),
    (_remove_an_event, "is missing"),
])
def test_a_damaged_backup_is_refused_naming_the_file_and_nothing_is_touched(
        small: Paths, target: Path, capsys: pytest.CaptureFixture[str], damage, expected: str) -> None:
    made = backup_module.backup(small, target).path
    bad = damage(made)
    before = digest_tree(small.root)

    code, out, err = run_cli(["restore", "--force", str(made)], capsys)

    assert code == 1
    assert err.startswith("hmo: ") and err.count("\n") == 1 and "Traceback" not in err
    assert bad in err and expected in err
    assert digest_tree(small.root) == before
    assert not list(small.root.glob("replaced-*")) and not list(small.root.glob("restoring-*"))


def test_an_interrupted_backup_stays_partial_and_is_refused(
        small: Paths, target: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    real_copy, calls = backup_module._copy, []

    def copy_then_die(source: Path, destination: Path) -> tuple[str, int]:
        calls.append(source)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the power goes, mid-backup
        return real_copy(source, destination)

    monkeypatch.setattr(backup_module, "_copy", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        backup_module.backup(small, target)
    monkeypatch.undo()
    [left] = list(target.iterdir())
    assert left.name.startswith("hmo-backup-") and left.name.endswith(".partial")
    before = digest_tree(small.root)

    code, _, err = run_cli(["restore", "--force", str(left)], capsys)
    assert code == 1 and "unfinished backup" in err
    # The same folder without its suffix still has no manifest: refused as well.
    renamed = left.rename(left.with_name(left.name.removesuffix(".partial")))
    code, _, err = run_cli(["restore", "--force", str(renamed)], capsys)
    assert code == 1 and "MANIFEST.json" in err
    assert digest_tree(small.root) == before


def test_a_backup_of_another_schema_version_is_refused(
        small: Paths, target: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = backup_module.backup(small, target).path
    manifest_path = made / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["schema_version"] = backup_module.SCHEMA_VERSION + 1
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    code, _, err = run_cli(["restore", "--force", str(made)], capsys)
    assert code == 1 and "schema version" in err and "hmo rebuild" in err


def test_restore_over_data_needs_force_and_force_keeps_the_old_files(
        small: Paths, target: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = backup_module.backup(small, target).path
    backed_up = files_under(small.root, "archive", "events", "outbox")
    # Life goes on after the backup: a new event and a changed warehouse.
    late_event = events.record(small, "verdict", submission_id=1, status="accepted")
    con = connect(small.warehouse)
    con.execute("update raw.submissions set load_state = 'loading'")
    con.close()
    before = digest_tree(small.root)

    code, _, err = run_cli(["restore", str(made)], capsys)
    assert code == 1 and "--force" in err and "warehouse.duckdb" in err
    assert digest_tree(small.root) == before

    code, out, err = run_cli(["restore", "--force", str(made)], capsys)
    assert code == 0, err
    [aside] = list(small.root.glob("replaced-*"))
    assert f"moved the previous contents aside into {aside}" in out
    # Nothing was deleted: every file that was there is in replaced-*/, unchanged.
    assert digest_tree(aside) == {name: sha for name, sha in before.items()
                                  if name.split("/")[0] in ("archive", "events", "outbox", "warehouse.duckdb")}
    assert (aside / "events" / late_event.name).exists()
    assert files_under(small.root, "archive", "events", "outbox") == backed_up
    assert table_rows(small.warehouse, ("raw.submissions",))["raw.submissions"][0][-1] == "received"
    assert table_rows(small.published, ("raw.submissions",))["raw.submissions"][0][-1] == "received"


def test_a_backup_target_inside_the_data_directory_is_refused(
        small: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    inside = small.root / "backups"
    inside.mkdir()
    before = digest_tree(small.root)

    code, _, err = run_cli(["backup", str(inside)], capsys)
    assert code == 1 and "inside the data directory" in err and "Traceback" not in err
    code, _, err = run_cli(["backup", str(small.root)], capsys)
    assert code == 1 and "inside the data directory" in err
    assert digest_tree(small.root) == before and not any(inside.iterdir())


def test_a_missing_target_or_warehouse_is_a_clear_error(
        paths: Paths, tmp_path: Path, target: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["backup", str(tmp_path / "not-mounted")], capsys)
    assert code == 1 and "no such directory" in err
    code, _, err = run_cli(["backup", str(target)], capsys)
    assert code == 1 and "no warehouse" in err
    assert not any(target.iterdir())
