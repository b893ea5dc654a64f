"""Issue #9: hostile files through the real stages (DuckDB, dbt, GX; no Prefect).

One batch of every hostile kind (bench/hostile.py, >= 300 items) goes through
one `flows.stages.run`; bench/fuzz.py's `check_batch` lists what breaks one
of the issue's promises, and each test below asserts one promise. The
property tests feed hypothesis-made files through the ingest layer alone and
through ingest and validation.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `bench` is the project's package, not tests/bench
    sys.path.insert(0, str(ROOT))

import hashlib
import tempfile
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import fuzz
from bench.hostile import HEADER, KINDS, Scale, csv_bytes, strategies, write_hostile
from hmo.settings import Paths

ITEMS = 320
SEED = 9
S = strategies()
PROPERTY = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def _show(failures: list[fuzz.Failure], limit: int = 60) -> str:
    lines = [f.line()[:600] for f in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"... and {len(failures) - limit} more")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    target = tmp_path_factory.mktemp("fuzz")
    paths = fuzz.fresh_data_dir(target)
    manifest = write_hostile(paths.inbox, ITEMS, SEED, scale=Scale.small(), outside=target / "outside")
    result = fuzz.run_batch(paths, manifest, timeout=240)
    return paths, manifest, result


def _failures(result: fuzz.BatchResult, check: str) -> list[fuzz.Failure]:
    return [f for f in result.failures if f.check == check]


def test_the_batch_holds_every_kind(batch):
    _, manifest, _ = batch
    assert len(manifest.items) >= 300
    assert set(manifest.kinds()) == set(KINDS)


def test_the_run_raises_nothing_and_reports_no_unread_file(batch):
    _, _, result = batch
    assert not _failures(result, "run"), _show(_failures(result, "run")) + "\n" + (result.traceback or "")


def test_every_item_is_answered_exactly_once(batch):
    _, _, result = batch
    assert not _failures(result, "answered"), _show(_failures(result, "answered"))


def test_nothing_is_lost_from_the_inbox_or_the_archive(batch):
    _, _, result = batch
    assert not _failures(result, "lost"), _show(_failures(result, "lost"))


def test_the_standard_decides_each_verdict_and_the_valid_files_are_accepted(batch):
    _, manifest, result = batch
    assert not _failures(result, "verdict"), _show(_failures(result, "verdict"))
    controls = [item for item in manifest.items if item.expect == "accepted"]
    assert controls and result.verdicts["accepted"] >= len(controls)


def test_nothing_of_a_rejected_file_is_published(batch):
    _, _, result = batch
    assert not _failures(result, "published"), _show(_failures(result, "published"))
    assert result.verdicts["rejected"] > 0


def test_a_second_run_answers_nothing_again_and_loses_nothing(batch):
    paths, manifest, result = batch
    failures = fuzz.rerun_is_quiet(paths, manifest)
    assert not failures, _show(failures)
    # what the first run refused is still refused and still in place
    again = fuzz.check_batch(paths, manifest, None, None, fuzz.Snapshot.of(paths))
    lost = [f for f in again.failures if f.check == "lost"]
    assert not lost, _show(lost)


# --------------------------------------------------------------------------- properties: ingest


def _normalised(header: str) -> str:
    text = unicodedata.normalize("NFD", header.strip().lstrip("\ufeff"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return "_".join(part for part in "".join(ch if ch.isascii() and ch.isalnum() else " " for ch in text).split())


_ALIASES = {name: name for name in HEADER} | {
    es: en for en, es in zip(HEADER, ["pais_reporte", "periodo", "tipo_flujo", "punto_fronterizo",
                                      "pais_contraparte", "sexo", "edad", "nacionalidad", "cantidad", "estado_obs"])}
_REQUIRED = ["reporting_country", "period", "flow_type", "sex", "age", "nationality", "count"]
_DEFAULTS = {"border_point": "_T", "counterpart_country": "_T", "obs_status": "A"}


def _ingest_one(files: dict[str, bytes]):
    """A fresh data directory holding `files` (name -> bytes) in inbox/PAN, through ingest_inbox."""
    from ingest.submissions import ingest_inbox
    from hmo.warehouse import connect

    scratch = tempfile.TemporaryDirectory(prefix="hmo-prop-")
    paths = Paths(Path(scratch.name) / "data")
    paths.ensure()
    for name, data in files.items():
        (paths.inbox / "PAN").mkdir(parents=True, exist_ok=True)
        (paths.inbox / "PAN" / name).write_bytes(data)
    con = connect(paths.warehouse)
    try:
        summary = ingest_inbox(con, paths)
        submissions = con.execute(
            "select submission_id, file_name, load_state, read_error, missing_columns, duplicate_columns, data_rows, "
            "sha256, archive_path from raw.submissions order by submission_id").fetchall()
        observations = con.execute(
            f"select submission_id, source_row, {', '.join(HEADER)} from raw.observations "
            "order by submission_id, source_row").fetchall()
        duplicates = con.execute("select count(*) from raw.duplicates").fetchone()[0]
    finally:
        con.close()
    return scratch, paths, summary, submissions, observations, duplicates


@PROPERTY
@given(S.table)
def test_ingest_loads_every_well_formed_table_verbatim(table):
    names, rows, delimiter, encoding, newline = table
    data = csv_bytes(names, rows, delimiter=delimiter, encoding=encoding, newline=newline)
    scratch, paths, summary, submissions, observations, _ = _ingest_one({"tabla.csv": data})
    with scratch:
        assert not summary.failed and not summary.refused
        [(_, _, status, read_error, missing, twice, data_rows, sha, archive)] = submissions
        assert status == "received"
        assert read_error is None, read_error
        assert not (paths.inbox / "PAN" / "tabla.csv").exists()
        assert sha == hashlib.sha256(data).hexdigest() and Path(archive).read_bytes() == data

        standard = [_ALIASES.get(_normalised(name)) for name in names]
        present = {s for s in standard if s}
        expected_twice = {s for s in present if standard.count(s) > 1}
        expected_missing = [s for s in _REQUIRED if s not in present]
        assert bool(missing) == bool(expected_missing), (missing, expected_missing, names)
        assert {entry.split("=")[0] for entry in (twice or [])} == expected_twice, (twice, names)
        if expected_missing or expected_twice:
            assert observations == [] and not data_rows
            return
        expected = []
        for number, row in enumerate(rows, start=2):
            values = [row[standard.index(column)] if column in present else _DEFAULTS.get(column, "")
                      for column in HEADER]
            expected.append((number, *values))
        loaded = [(source_row, *[(v if v is not None else "") for v in values])
                  for _, source_row, *values in observations]
        assert loaded == expected
        assert data_rows == len(rows)


@PROPERTY
@given(S.raw_file, st.sampled_from(["datos.csv", "datos.xlsx", "datos.txt", "datos"]), st.booleans())
def test_ingest_answers_any_bytes_once_and_archives_them(data, name, twice):
    files = {name: data, **({f"copia de {name}": data} if twice else {})}
    scratch, paths, summary, submissions, observations, duplicates = _ingest_one(files)
    with scratch:
        assert not summary.failed and not summary.refused
        [(sid, file_name, status, read_error, missing, named_twice, data_rows, sha, archive)] = submissions
        assert status == "received"
        assert duplicates == (1 if twice else 0)
        assert not list((paths.inbox / "PAN").iterdir())
        assert sha == hashlib.sha256(data).hexdigest() and Path(archive).read_bytes() == data
        assert (data_rows or 0) == len(observations)
        if read_error or missing or named_twice:
            assert observations == []


# --------------------------------------------------------------------------- properties: validation


@pytest.fixture(scope="module")
def validation_dir(tmp_path_factory):
    return fuzz.fresh_data_dir(tmp_path_factory.mktemp("validation"))


_counter = iter(range(10**9))


@settings(max_examples=3, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(st.lists(S.mutated_valid(), min_size=12, max_size=24))
def test_validation_rejects_exactly_the_files_with_a_defect_and_names_its_rule(validation_dir, files):
    from flows import stages

    paths = validation_dir
    written = {}
    for header, rows, rule in files:
        name = f"mutado_{next(_counter)}.csv"
        (paths.inbox / "PAN").mkdir(parents=True, exist_ok=True)
        (paths.inbox / "PAN" / name).write_bytes(csv_bytes(header, rows))
        written[name] = rule
    summary = stages.run(paths, stages=("ingest", "validate"))
    verdicts = {v.file_name: v for v in summary.verdicts}
    duplicates = {r.file_name for r in summary.ingested.received if r.duplicate_of}
    wrong = []
    for name, rule in written.items():
        if name in duplicates:
            continue
        verdict = verdicts.get(name)
        if verdict is None:
            wrong.append(f"{name}: no verdict")
        elif rule is None and verdict.status != "accepted":
            wrong.append(f"{name}: valid, but {verdict.status} {verdict.rules_failed}")
        elif rule is not None and (verdict.status != "rejected" or rule not in verdict.rules_failed):
            wrong.append(f"{name}: defect {rule}, but {verdict.status} {verdict.rules_failed}")
    assert not wrong, "\n".join(wrong)
