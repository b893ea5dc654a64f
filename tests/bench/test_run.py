"""The benchmark harness in its smallest mode: it runs, and writes every section with numbers."""
from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

from hmo.settings import PROJECT_ROOT

from bench.harness import DEFAULT_OUT, NOTES_END, NOTES_START, Run, parse_size
from bench.phases import SizeResults
from bench.report import Report, kept_notes

SECTIONS = ["## Machine", "## 1. Ingest", "## 2. Validation", "## 3. Incremental run",
            "## 4. CBP layout against the standard layout", "## 5. Peak memory (RSS)", "## Where the time goes",
            "## Reproduce"]


def table_rows(markdown: str, section: str, column: int = 0) -> list[list[str]]:
    """Rows of the section's tables whose `column` reads 2k."""
    body = markdown.split(section, 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in body.splitlines()
            if line.startswith("|")]
    return [row for row in rows if len(row) > column and row[column] == "2k"]


def test_smallest_run_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    (tmp_path / "work").mkdir()
    out.write_text(f"old\n{NOTES_START}\nkept analysis\n{NOTES_END}\n")
    before = DEFAULT_OUT.read_bytes() if DEFAULT_OUT.exists() else None
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--sizes", "2000", "--repeat", "1", "--no-incremental", "--no-check", "--no-watch",
         "--no-profile", "--cbp", str(tmp_path / "absent.csv"), "--work", str(tmp_path / "work"), "--out", str(out)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    for section in SECTIONS:
        assert section in text, section
    assert text.startswith("# Benchmarks") and "kept analysis" in text
    assert re.search(r"\| nproc \| \d+ \|", text) and "| DuckDB | " in text
    for section in ("## 1. Ingest", "## 2. Validation"):
        row = table_rows(text, section)[0]  # the main table comes first
        figure, baseline, ratio = (float(row[i].split()[0]) for i in (1, 2, 3))
        assert figure > 0 and baseline > 0
        assert abs(ratio - figure / baseline) <= 0.1 * ratio  # the table shows rounded seconds
        assert row[5] == "information" and row[4].endswith("at 10M)")  # issue #4 sets the targets at 10M
    memory = table_rows(text, "## 5. Peak memory (RSS)", column=1)
    assert [row[0] for row in memory] == ["ingest", "validation"]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in memory)
    assert "not measured" in text.split("## 3. Incremental run", 1)[1].split("\n## ", 1)[0].lower()
    assert "absent.csv` is absent" in text.split("## 4. CBP layout", 1)[1].split("\n## ", 1)[0]  # skipped, no error
    # scratch data stays in the work directory; the repository's document is untouched
    assert (tmp_path / "work" / "data" / "pan_2k.csv").exists()
    assert (DEFAULT_OUT.read_bytes() if DEFAULT_OUT.exists() else None) == before


def test_sizes_and_notes(tmp_path: Path) -> None:
    assert [parse_size(s) for s in ("10000", "1M", "100k", "10_000_000")] == [10_000, 1_000_000, 100_000,
                                                                           10_000_000]
    assert "run with pyinstrument" in kept_notes(tmp_path / "missing.md")
    page = tmp_path / "b.md"
    page.write_text(f"x\n{NOTES_START}\nmine\n{NOTES_END}\ny")
    assert kept_notes(page) == "mine"


def test_work_directory_must_be_outside_the_repository() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--sizes", "2000", "--work", str(PROJECT_ROOT / "benchwork")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "outside the repository" in result.stderr
    assert not (PROJECT_ROOT / "benchwork").exists()


def test_ingest_and_validation_ratios_are_judged_at_10m_rows_only() -> None:
    def sized(rows: int) -> SizeResults:
        res = SizeResults(rows)
        for figure, baseline in ((res.ingest, res.ingest_base), (res.validate, res.validate_base)):
            figure.add(Run(seconds=5.0, wall=5.0, rss_mb=1.0))
            baseline.add(Run(seconds=1.0, wall=1.0, rss_mb=1.0))
        return res

    args = argparse.Namespace(repeat=1, large_repeat=None, work=Path("/tmp/w"), new_rows=10_000)
    report = Report(args=args, command="python -m bench.run", started=dt.datetime(2025, 1, 1), load_start="0",
                    results=[sized(1_000_000), sized(10_000_000)], new_file=None, new_month=None, flow_mode="",
                    notes="", finished=dt.datetime(2025, 1, 1, 0, 5), code_end="x")

    assert report.missed(report.results[0]) == []
    assert report.missed(report.results[1]) == ["ingest", "validation"]
    assert "Targets missed in this run: ingest at 10M, validation at 10M." in report.markdown()


def test_the_watch_section_judges_the_median_served_drop_against_its_target() -> None:
    from bench import watch

    started = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
    res = watch.WatchResults(command="python -m bench.watch", repeat=3, started=started, load_start="0.1",
                             served=[1.8, 4.0, 1.9], baseline=[11.0, 12.0, 13.0], finished=started)
    line = next(line for line in watch.section(res) if line.startswith("| 10k rows"))
    assert "| 1.90 (1.80–4.00) | 12.00 (11.00–13.00) | 0.16× | < 3 s | yes |" in line
    res.served = [3.5, 3.1, 1.0]
    assert next(line for line in watch.section(res) if line.startswith("| 10k rows")).endswith("| no |")
