"""Section 4 of the benchmark (CBP layout against the standard layout), with the measuring faked.

The real measurement runs dbt and GX twice per repeat (tens of seconds), so
these tests answer each `bench.measure` call instantly and check what the
harness asks for, what it checks in the answers and what it writes.
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from bench.harness import CBP_FILE, Run
from bench.phases import CbpResults, measure_cbp
from bench.report import Report

CBP_HEADER = ("Fiscal Year,Month Grouping,Month (abbv),Land Border Region,State,Demographic,Citizenship,"
              "Title of Authority,Encounter Count")
ROWS = 60


class FakeHarness:
    """Answers `stage` as bench.measure would; the CBP file takes `cbp_seconds`, the standard file 2 s."""

    def __init__(self, work: Path, cbp_seconds: float = 3.0, cbp_profile: str = "cbp-nationwide-encounters",
                 rows: int = ROWS) -> None:
        self.work, self.cbp_seconds, self.cbp_profile, self.rows = work, cbp_seconds, cbp_profile, rows
        self.calls: list[tuple[str, str, Any, str]] = []

    def stage(self, stage: str, label: str, **kwargs: Any) -> Run:
        root = Path(kwargs["root"])
        (placed,) = [p for p in (root / "inbox").rglob("*") if p.is_file()]
        self.calls.append((stage, label, kwargs.get("ingest"), str(placed.relative_to(root))))
        cbp = placed.name == CBP_FILE.name
        seconds = self.cbp_seconds if cbp else 2.0
        parts = {"ingest": seconds / 4, "ingest_inbox: load_file (sniff + read_csv insert)": seconds / 5,
                 "dbt: prepare_validation (seeds + views)": seconds / 2}
        data = {"seconds": seconds, "parts": parts, "rows": self.rows, "failed": [],
                "profiles": [self.cbp_profile if cbp else "standard"], "statuses": {"accepted": 1}}
        return Run(seconds=seconds, wall=seconds + 1.5, rss_mb=500.0 if cbp else 400.0, data=data)


def cbp_file(folder: Path) -> Path:
    path = folder / CBP_FILE.name
    lines = [f"2023,FYTD,{('OCT', 'NOV', 'DEC')[i % 3]},Southwest Land Border,TX,Single Adults,MEXICO,Title 8,{i}"
             for i in range(ROWS)]
    path.write_text("\n".join([CBP_HEADER, *lines]) + "\n")
    return path


def markdown(cbp: CbpResults | None) -> str:
    args = argparse.Namespace(repeat=2, large_repeat=None, work=Path("/tmp/w"), new_rows=10_000)
    report = Report(args=args, command="python -m bench.run", started=dt.datetime(2025, 1, 1), load_start="0",
                    results=[], new_file=None, new_month=None, flow_mode="", notes="", cbp=cbp,
                    finished=dt.datetime(2025, 1, 1, 0, 5), code_end="x")
    return report.markdown()


def section(text: str, title: str) -> str:
    return text.split(title, 1)[1].split("\n## ", 1)[0]


def table_row(body: str, first: str) -> list[str]:
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{body}")


def test_both_files_alternate_from_the_usa_inbox_to_a_verdict(tmp_path: Path) -> None:
    harness = FakeHarness(tmp_path / "work")
    res = measure_cbp(harness, cbp_file(tmp_path), tmp_path / "data", repeat=2)  # type: ignore[arg-type]
    assert not res.errors and not res.skipped and res.rows == ROWS
    standard = f"inbox/USA/usa_{ROWS}.csv"
    assert harness.calls == [
        ("validate", "cbp-layout-1", True, f"inbox/USA/{CBP_FILE.name}"),
        ("validate", "standard-layout-1", True, standard),
        ("validate", "cbp-layout-2", True, f"inbox/USA/{CBP_FILE.name}"),
        ("validate", "standard-layout-2", True, standard),
    ]
    # the baseline has the CBP file's row count, in the standard layout, reported by USA
    lines = (tmp_path / "data" / f"usa_{ROWS}.csv").read_text().splitlines()
    assert len(lines) == ROWS + 1 and lines[0].startswith("reporting_country,") and lines[1].startswith("USA,")
    assert not list((tmp_path / "work" / "runs").iterdir())  # each data directory is removed after its run

    body = section(markdown(res), "## 4. CBP layout against the standard layout")
    assert "`cbp-nationwide-encounters`" in body and "inbox/USA/" in body
    assert table_row(body, str(ROWS))[1:] == ["3.00 (3.00–3.00)", "2.00 (2.00–2.00)", "1.50", "< 3.0", "yes"]
    assert table_row(body, "ingest")[1:] == ["0.75", "0.50"]
    assert table_row(body, f"{ROWS}, ingest alone")[1:] == ["0.75", "0.50", "1.50", "< 3.0", "yes"]
    memory = section(markdown(res), "## 5. Peak memory (RSS)")
    assert table_row(memory, "CBP file, ingest + validation (baseline: standard file)")[1:] == [
        str(ROWS), "500", "400", "< 2 GB", "yes"]


def test_a_slow_cbp_file_misses_the_target(tmp_path: Path) -> None:
    res = measure_cbp(FakeHarness(tmp_path / "work", cbp_seconds=6.0), cbp_file(tmp_path),  # type: ignore[arg-type]
                      tmp_path / "data", repeat=1)
    text = markdown(res)
    assert table_row(section(text, "## 4. CBP"), str(ROWS))[3:] == ["3.00", "< 3.0", "**no**"]
    assert f"Targets missed in this run: CBP layout at {ROWS}." in text


def test_wrong_profile_or_rows_are_reported(tmp_path: Path) -> None:
    source = cbp_file(tmp_path)
    res = measure_cbp(FakeHarness(tmp_path / "w1", cbp_profile="standard"), source,  # type: ignore[arg-type]
                      tmp_path / "data", repeat=1)
    assert res.errors == ["cbp layout: read with ['standard'], not ['cbp-nationwide-encounters']"]
    res = measure_cbp(FakeHarness(tmp_path / "w2", rows=ROWS - 1), source,  # type: ignore[arg-type]
                      tmp_path / "data", repeat=1)
    assert len(res.errors) == 1 and f"{ROWS - 1} of {ROWS} rows loaded" in res.errors[0]
    assert "## Problems seen during the run" in markdown(res)


def test_absent_file_or_no_cbp_skips_the_section(tmp_path: Path) -> None:
    harness = FakeHarness(tmp_path / "work")
    res = measure_cbp(harness, tmp_path / "absent.csv", tmp_path / "data", repeat=1)  # type: ignore[arg-type]
    assert harness.calls == [] and not res.errors
    body = section(markdown(res), "## 4. CBP layout against the standard layout")
    assert f"Not measured in this run (`{tmp_path / 'absent.csv'}` is absent)." in body
    assert "Not measured in this run (`--no-cbp`)." in markdown(None)
