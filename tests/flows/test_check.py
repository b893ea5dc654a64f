"""`hmo check`: the verdict of a real run, from a template warehouse, without touching the data directory."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from conftest import SAMPLES, drop_sample
from flows import check as checking
from flows import stages
from flows.cli import main
from harmonise import dbt
from hmo.settings import Paths

ACCEPTED, REJECTED = "PAN", "GTM"  # the bundled samples: one passes every rule, one breaks three
ALIASED = "CRI"  # its sample with a name only the data directory's alias file resolves


def sample(country: str) -> Path:
    return next((SAMPLES / country).iterdir())


def aliased_file(folder: Path) -> Path:
    path = folder / ALIASED / "entradas_narnia.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sample(ALIASED).read_text(encoding="utf-8-sig").replace("Germany", "Narnia"), encoding="utf-8")
    return path


def templates(paths: Paths) -> list[Path]:
    return sorted(paths.work.glob(f"{checking.TEMPLATE_PREFIX}*.duckdb"))


def recorded_fingerprint(template: Path) -> str:
    con = duckdb.connect(str(template), read_only=True)
    try:
        return con.execute("select fingerprint from main.hmo_build_state where step = 'validation'").fetchone()[0]
    finally:
        con.close()


def as_json(value: object) -> object:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """Both samples through every stage, as `hmo run` would take them (without Prefect)."""
    paths = Paths(tmp_path_factory.mktemp("real") / "data")
    paths.ensure()
    for country in (ACCEPTED, REJECTED):
        drop_sample(paths, country)
    aliased_file(paths.inbox)
    paths.aliases.mkdir()
    (paths.aliases / f"{ALIASED}.csv").write_text(
        "name,code,source,added_by,added_at\nNarnia,DEU,a test of hmo check,tests,2026-12-02\n", encoding="utf-8")
    summary = stages.run(paths)
    assert summary.failure is None
    return paths


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Paths, dict[str, checking.CheckResult]]:
    """Both samples checked against one data directory (its template built by the first)."""
    paths = Paths(tmp_path_factory.mktemp("check") / "data")
    return paths, {country: checking.check(paths, sample(country), country) for country in (ACCEPTED, REJECTED)}


def real_receipt(paths: Paths, country: str) -> dict:
    [path] = (paths.outbox / country).glob("*.json")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("country, status", [(ACCEPTED, "accepted"), (REJECTED, "rejected")])
def test_check_gives_the_verdict_and_problems_of_a_real_run(real_run, checked, country, status):
    _, results = checked
    receipt = real_receipt(real_run, country)
    assert receipt["status"] == results[country].verdict == status
    assert as_json(results[country].problems) == receipt["problems"]
    if status == "rejected":
        assert {p["rule"] for p in receipt["problems"]} >= {"R02", "R03", "R04"}


def test_check_resolves_names_through_the_data_directorys_alias_files(real_run, checked, tmp_path):
    # Without an alias the name does not resolve (the rejected sample has it too).
    _, results = checked
    assert any(p["rule"] == "R02" and p["value"] == "Narnia" for p in results[REJECTED].problems)
    source = aliased_file(tmp_path)
    assert real_receipt(real_run, ALIASED)["status"] == "accepted"
    result = checking.check(real_run, source, ALIASED)
    assert (result.verdict, result.problems) == ("accepted", [])
    assert "DEU" in {row[result.preview_columns.index("nationality")] for row in result.preview}


def test_the_check_receipt_shows_no_submission_id(real_run, checked):
    _, results = checked
    for country, result in results.items():
        assert "dry run" in result.receipt and "prueba" in result.receipt.lower()
        [line] = [x for x in result.receipt.splitlines() if x.startswith("Envío / Submission:")]
        assert checking.DRY_RUN_SUBMISSION in line
        assert not re.search(r"Submission:\s*\d", line)
        real_id = real_receipt(real_run, country)["submission_id"]
        assert f"Submission: {real_id}" not in result.receipt


def test_check_never_touches_the_real_data_directory(tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    monkeypatch.setenv("HMO_DATA_DIR", str(root))
    source = tmp_path / ACCEPTED / sample(ACCEPTED).name
    source.parent.mkdir()
    shutil.copyfile(sample(ACCEPTED), source)

    # Without the template (the path before it): nothing at all is written there.
    monkeypatch.setenv(checking.TEMPLATE_SWITCH, "off")
    assert main(["check", str(source)]) == 0
    assert not root.exists()

    monkeypatch.delenv(checking.TEMPLATE_SWITCH)
    assert main(["check", str(source)]) == 0
    out = capsys.readouterr().out
    assert "ACEPTADO / ACCEPTED" in out and checking.DRY_RUN_SUBMISSION in out
    # Only the template, in the scratch folder: no archive, warehouse, inbox, outbox or event.
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "work", f"work/{templates(Paths(root))[0].name}"]
    assert source.read_bytes() == sample(ACCEPTED).read_bytes()


def test_a_stale_template_is_rebuilt_and_a_current_one_kept(checked, monkeypatch):
    paths, results = checked
    [current] = templates(paths)
    inode = current.stat().st_ino
    again = checking.check(paths, sample(ACCEPTED), ACCEPTED)
    assert again.template == current and current.stat().st_ino == inode  # used as it is, not rebuilt

    # A seed, model or macro changed: the project's fingerprint moves.
    changed = "changed-" + dbt.project_fingerprint()
    monkeypatch.setattr(dbt, "project_fingerprint", lambda: changed)
    result = checking.check(paths, sample(REJECTED), REJECTED)
    [rebuilt] = templates(paths)
    assert rebuilt != current and result.template == rebuilt
    assert recorded_fingerprint(rebuilt) == changed
    assert (result.verdict, result.problems) == (results[REJECTED].verdict, results[REJECTED].problems)
