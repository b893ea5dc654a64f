"""Each `hmo` command as a user meets it, through `flows.cli.main`: what it prints, its exit code, what it writes.

Commands tested elsewhere are not repeated here: `demo` (and so `run`, and what it shows while it works) in
test_server.py, `check` in test_check.py, `status` and `sql` in test_cli.py and test_query.py, `aliases add`
and `revalidate` in test_aliases.py, `rebuild` in test_rebuild.py, `backup` and `restore` in test_backup.py.
Every command is in the README and answers `--help`: tests/test_docs.py.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from conftest import SAMPLES
from flows import stages
from flows.cli import main
from flows.writer import writer_lock
from hmo.settings import Paths

# (country, file name) of each bundled sample, in the order ingest numbers them.
SAMPLE_FILES = [(path.parent.name, path.name) for path in sorted(SAMPLES.glob("*/*"))]
PAN_SAMPLE = next(name for country, name in SAMPLE_FILES if country == "PAN")
PAN_ID = SAMPLE_FILES.index(("PAN", PAN_SAMPLE)) + 1
REJECTED_SAMPLE = "GTM"  # retornos_enero_2024_con_errores.csv: the one sample with errors
DUPLICATE = "copia.csv"  # the PAN sample's bytes again, under another name

Outcome = tuple[int, str, str]  # exit code, stdout, stderr


def hmo(*argv: str) -> Outcome:
    """`hmo argv` in this process; for module-scoped fixtures, which capsys cannot serve."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def outbox(paths: Paths) -> list[str]:
    return sorted(p.relative_to(paths.outbox).as_posix() for p in paths.outbox.rglob("*.txt"))


@dataclass
class Site:
    paths: Paths
    ingest: Outcome
    statuses_after_ingest: list[tuple]
    outbox_after_ingest: list[str]
    published_after_ingest: bool
    build: Outcome
    build_again: Outcome  # --verbose, nothing new to build


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The bundled samples and a second copy of one, received by `hmo ingest`, then `hmo build` (one pipeline run)."""
    paths = Paths(tmp_path_factory.mktemp("cli") / "data")
    paths.ensure()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HMO_DATA_DIR", str(paths.root))
        stages.copy_samples(paths)
        original = paths.inbox / "PAN" / PAN_SAMPLE
        copy = paths.inbox / "PAN" / DUPLICATE
        shutil.copyfile(original, copy)
        later = original.stat().st_mtime + 10  # arrives after the original: the copy is the duplicate
        os.utime(copy, (later, later))

        ingested = hmo("ingest")
        statuses = rows(paths.warehouse, "select reporting_country, file_name, load_state from raw.submissions order by 1")
        answered, published = outbox(paths), paths.published.exists()
        built = hmo("build")
        again = hmo("build", "--verbose")
    return Site(paths, ingested, statuses, answered, published, built, again)


@pytest.fixture
def at_site(site: Site, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv("HMO_DATA_DIR", str(site.paths.root))
    return site.paths


def test_ingest_receives_the_inbox_without_validating_and_answers_a_duplicate_at_once(site):
    code, out, err = site.ingest

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        *(f"received  {country}/{name} [submission {n}]" for n, (country, name) in enumerate(SAMPLE_FILES, 1)),
        f"duplicate PAN/{DUPLICATE} [same bytes as submission {PAN_ID}]",
        f"receipts: {site.paths.outbox}",
    ]
    # Nothing validated, answered or published yet: that is `hmo build`'s.
    assert site.statuses_after_ingest == [(country, name, "received") for country, name in SAMPLE_FILES]
    assert site.outbox_after_ingest == [f"PAN/{DUPLICATE}.d1.duplicate.txt"]
    assert not site.published_after_ingest


def test_build_validates_publishes_and_answers_every_received_file(site):
    code, out, err = site.build
    paths = site.paths

    assert code == 0
    lines = out.splitlines()
    for n, (country, name) in enumerate(SAMPLE_FILES, 1):
        line = lines[n - 1]
        if country == REJECTED_SAMPLE:
            # The rules it broke, as its receipt lists them.
            assert re.fullmatch(rf"rejected  {country}/{re.escape(name)} \[submission {n}\] \((R\d\d, )*R\d\d\)", line)
        else:
            assert line == f"accepted  {country}/{name} [submission {n}]"
    log = Path(lines[-1].removeprefix("log: "))
    assert log.parent == paths.root / "logs" and log.name.startswith("build-") and log.is_file()
    assert lines[len(SAMPLE_FILES):] == [f"receipts: {paths.outbox}", f"published: {paths.published}", f"log: {log}"]

    assert outbox(paths) == sorted([
        *(f"{country}/{name}.{n}.{'rejected' if country == REJECTED_SAMPLE else 'accepted'}.txt"
          for n, (country, name) in enumerate(SAMPLE_FILES, 1)),
        f"PAN/{DUPLICATE}.d1.duplicate.txt",  # answered by ingest, not again
    ])
    # Readers see the accepted files' figures, and only theirs.
    assert {country for (country,) in rows(paths.published, "select distinct reporting_country from marts.fct_flows")} \
        == {country for country, _ in SAMPLE_FILES if country != REJECTED_SAMPLE}


STAGE_LINE = re.compile(r"(validate|audit|publish|receipts): (started|done in \d+\.\d s: .+)")


def test_build_says_on_stderr_what_each_stage_did_and_keeps_dbts_lines_in_its_log(site):
    _, out, err = site.build
    paths = site.paths

    # Not a terminal: plain lines, a start and an end per stage, in the order of the stages.
    progress = err.splitlines()
    assert all(STAGE_LINE.fullmatch(line) for line in progress), err
    assert [(line.split(":")[0], line.endswith("started")) for line in progress] == \
        [(stage, started) for stage in stages.BUILD_STAGES for started in (True, False)]
    assert re.search(r"^validate: done in \d+\.\d s: 4 submissions: 3 accepted, 1 rejected$", err, re.M)
    assert "publish: done in" in err and f": readers now open {paths.published}" in err
    assert "dbt" not in err + out  # dbt's own lines are in the log only

    log = Path(out.splitlines()[-1].removeprefix("log: "))
    text = log.read_text(encoding="utf-8")
    assert "hmo.run: dbt: Running with dbt=" in text and "hmo.run: dbt: Done. PASS=" in text
    assert f"hmo.run: validate: rejected {REJECTED_SAMPLE}/" in text
    assert re.search(r"dbt_event: \d+ dbt events, \d+ lines logged, \d+\.\d+ s of CPU", text)


def test_build_verbose_shows_dbts_lines_on_stderr(site):
    code, out, err = site.build_again

    assert code == 0 and "dbt" not in out
    assert "hmo.run: dbt: Running with dbt=" in err and "hmo.run: dbt: Done. PASS=" in err
    # The stages' own lines are there too, and everything is in this build's own log.
    assert "validate: done in" in err and "validate: no submission to validate" in err
    log = Path(out.splitlines()[-1].removeprefix("log: "))
    assert log.name.startswith("build-") and log != Path(site.build[1].splitlines()[-1].removeprefix("log: "))
    assert "hmo.run: dbt: Running with dbt=" in log.read_text(encoding="utf-8")


def test_report_writes_the_monthly_report_in_both_languages_from_what_is_published(at_site, capsys):
    assert not list(at_site.reports.glob("*/report.*"))  # `hmo build` leaves the report to `hmo report`

    assert main(["report"]) == 0

    out, err = capsys.readouterr()
    folder = at_site.reports / "2024-02"  # the samples' latest month with accepted data
    assert (out, err) == ("".join(f"report 2024-02 ({lang}): {folder / f'report.{lang}.{kind}'}\n"
                                  for lang in ("es", "en") for kind in ("html", "pdf")), "")
    html = (folder / "report.es.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and 'id="q01-PAN"' in html
    assert (folder / "report.en.pdf").read_bytes().startswith(b"%PDF")


def _english_and_spanish(description: str) -> bool:
    english, _, spanish = description.partition("\nES: ")
    return bool(english.strip() and spanish.strip())


def test_docs_writes_one_page_with_every_model_and_column_in_english_and_spanish(at_site, capsys):
    assert main(["docs"]) == 0

    assert capsys.readouterr().out == f"dbt docs (every model and column, English and Spanish): {at_site.dbt_docs}\n"
    page = at_site.dbt_docs.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "fct_flows_comparable" in page
    manifest = json.loads((at_site.work / "dbt-target" / "manifest.json").read_text(encoding="utf-8"))
    documented = [*(node for node in manifest["nodes"].values() if node["resource_type"] in ("model", "seed")),
                  *manifest["sources"].values()]
    assert len(documented) > 40
    missing = [node["name"] for node in documented if not _english_and_spanish(node["description"])]
    missing += [f"{node['name']}.{column['name']}" for node in documented for column in node["columns"].values()
                if not _english_and_spanish(column["description"])]
    assert not missing, f"no English and Spanish description (`ES: ` paragraph): {missing}"
    # The catalog came from the built warehouse: the page knows each mart's columns and their types.
    catalog = json.loads((at_site.work / "dbt-target" / "catalog.json").read_text(encoding="utf-8"))
    assert catalog["nodes"]["model.hmo.fct_flows"]["columns"]["count"]["type"].upper() == "BIGINT"


# -- writers refuse at once while another writes (the lock comes before anything heavy) -----------------------

@pytest.mark.parametrize("argv", [["run"], ["demo"], ["build", "--full-refresh"]],
                         ids=lambda argv: argv[0])
def test_a_writing_command_stops_at_once_in_one_line_while_another_writes(paths, capsys, argv):
    with writer_lock(paths.writer_lock, "hmo build"):
        started = time.monotonic()
        code = main(argv)
        seconds = time.monotonic() - started

    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert re.fullmatch(rf"hmo: another hmo build \(pid {os.getpid()}, since [^)]+\) is writing the warehouse; "
                        r"try again when it ends, or pass --wait SECONDS\n", err), err
    assert seconds < 2, f"refused after {seconds:.1f} s: something started before the lock"
    assert not any(paths.inbox.iterdir())  # `demo` copied no sample
    assert not paths.warehouse.exists()


# -- check: the file is the one argument it needs --------------------------------------------------------------

def test_check_of_a_missing_file_is_one_line(paths, tmp_path, capsys):
    missing = tmp_path / "PAN" / "nope.csv"
    assert main(["check", str(missing)]) == 1
    assert capsys.readouterr() == ("", f"hmo: no such file: {missing}\n")


def test_check_asks_which_country_sends_a_file_outside_a_country_folder(paths, tmp_path, capsys):
    source = tmp_path / "downloads" / "flows.csv"
    source.parent.mkdir()
    shutil.copyfile(SAMPLES / "PAN" / PAN_SAMPLE, source)

    assert main(["check", str(source)]) == 1
    assert capsys.readouterr() == (
        "", "hmo: say which country sends this file: --country ISO3 (or keep it in a folder named after it)\n")


# -- aliases list ----------------------------------------------------------------------------------------------

ALIAS_HEADER = "name,code,source,added_by,added_at"


def test_aliases_list_shows_the_shipped_and_the_added_aliases(paths, capsys):
    added = paths.aliases / "COL.csv"
    added.parent.mkdir(parents=True)
    added.write_text(f"{ALIAS_HEADER}\nGuyane,GUF,requested by ana,ana,2026-01-02T10:00:00+00:00\n", encoding="utf-8")

    assert main(["aliases", "list", "--format", "csv"]) == 0
    listed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    shipped = [row for row in listed if row["country"] == "CAN"]
    assert shipped and all(Path(row["file"]).parent.name == "aliases" and Path(row["file"]).name == "CAN.csv"
                           for row in shipped)
    assert {"country": "COL", "name": "Guyane", "code": "GUF", "source": "requested by ana", "added_by": "ana",
            "added_at": "2026-01-02T10:00:00+00:00", "file": str(added)} in listed

    assert main(["aliases", "list", "col", "--format", "json"]) == 0
    assert [(a["country"], a["name"], a["code"]) for a in json.loads(capsys.readouterr().out)] == [
        ("COL", "Guyane", "GUF")]

    assert main(["aliases", "list", "COL"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["country", "name", "code", "source", "added_by", "added_at", "file"]
    assert table[2].split()[:3] == ["COL", "Guyane", "GUF"] and table[-1] == "(1 rows)"


def test_aliases_list_names_a_broken_alias_file_in_one_line(paths, capsys):
    broken = paths.aliases / "COL.csv"
    broken.parent.mkdir(parents=True)
    broken.write_text("nombre,codigo\nGuyane,GUF\n", encoding="utf-8")

    assert main(["aliases", "list"]) == 1
    assert capsys.readouterr() == ("", f"hmo: {broken}: the header must be {ALIAS_HEADER}\n")


def test_report_before_any_build_says_what_to_do_and_leaves_no_warehouse(paths, capsys):
    assert main(["report"]) == 1
    assert capsys.readouterr().err == (f"hmo: nothing is published in {paths.root} yet: "
                                       "run `hmo run` (or `hmo build`) first\n")
    assert not paths.warehouse.exists()


def test_a_spark_build_before_any_submission_says_what_to_do(paths, capsys):
    assert main(["ingest"]) == 0
    capsys.readouterr()

    assert main(["build", "--target", "spark"]) == 1
    assert capsys.readouterr().err == (f"hmo: no submission has been received in {paths.root} yet: Spark builds "
                                       "from the files `hmo run` (or `hmo ingest`) received\n")
