"""Publication (issue #14): section 8 of docs/benchmarks.md.

`python -m bench.publication [--repeat N]` measures, in one run, and rewrites the section in place between
`<!-- publication:start -->` and `<!-- publication:end -->`:

- secondary suppression and its attacker (publication/suppression.py) on generated tables of about 10,000
  cells (bench.tables: fully crossed, and linked marginal tables), against a naive suppression of the same
  tables (one complementary cell per primary) as the baseline: what the proven method costs more, and
  how many cells each leaves the attacker;
- the snapshot (hmo.warehouse.publish) as a share of the pipeline run it ends: `flows.stages.run` on a
  10,000-row file after a month of history, each stage timed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.report import write_section
from bench.harness import DEFAULT_OUT, fmt, git_state, loadavg, log, median
from bench.tables import AGES, cross_table, marginal_tables
from publication.suppression import Suppression, Table, attack, build_table, exposed, primary, suppress

START, END = "<!-- publication:start -->", "<!-- publication:end -->"
THRESHOLD = 5
TARGET = 10.0  # s, suppression of a 10,000-cell table (issue #14)
SNAPSHOT_TARGET = 0.10  # of a run


def naive(table: Table) -> np.ndarray:
    """One complementary cell per primary: the smallest other part of the first total it is a part of."""
    hidden = primary(table, THRESHOLD)
    relations = table.relations.tocsc()
    rows_of = table.relations.tocsr()
    for cell in np.flatnonzero(hidden):
        column = relations[:, cell]
        as_part = column.indices[column.data > 0]
        if not len(as_part):
            continue
        row = rows_of[as_part[0]]
        others = [c for c in row.indices[row.data > 0] if c != cell and not hidden[c]]
        if others:
            hidden[min(others, key=lambda c: table.values[c])] = True
    return hidden


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def measure_tables(repeat: int) -> list[dict[str, Any]]:
    rows = []
    for name, make in (("crossed nationality × sex × age", lambda: cross_table(370)),
                       ("linked marginal tables", lambda: marginal_tables(3300, size=2.6))):
        table = build_table(make(), {"age": AGES})
        ours, ours_attack, base, base_attack = [], [], [], []
        for r in range(repeat):
            log(f"publication: {name} #{r + 1}")
            seconds, suppression = _timed(lambda: suppress(table, THRESHOLD))
            ours.append(seconds)
            seconds, found = _timed(lambda: attack(table, suppression.suppressed))
            ours_attack.append(seconds)
            weak = exposed(table, suppression, found, THRESHOLD)
            seconds, hidden = _timed(lambda: naive(table))
            base.append(seconds)
            pattern = Suppression(hidden, primary(table, THRESHOLD), 0)
            seconds, naive_found = _timed(lambda: attack(table, hidden))
            base_attack.append(seconds)
            naive_weak = exposed(table, pattern, naive_found, THRESHOLD)
        rows.append({"name": name, "cells": table.size, "primary": int(suppression.primary.sum()),
                     "hidden": int(suppression.suppressed.sum()), "programs": suppression.programs,
                     "ours": median(ours), "ours_attack": median(ours_attack), "weak": int(weak.sum()),
                     "naive_hidden": int(hidden.sum()), "naive": median(base), "naive_attack": median(base_attack),
                     "naive_weak": int(naive_weak.sum())})
    return rows


def measure_snapshot(repeat: int) -> dict[str, float]:
    from bench.generate import generate
    from flows import stages
    from hmo.settings import Paths

    shares, snapshots, runs, publications = [], [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        history = Paths(base / "history")
        history.ensure()
        generate(10_000, history.inbox / "PAN" / "history.csv", country="PAN", start="2025-01", seed=100)
        log("publication: the history run (untimed)")
        stages.run(history)
        for r in range(repeat):
            root = base / f"run{r}"
            shutil.copytree(history.root, root)
            paths = Paths(root)
            generate(10_000, paths.inbox / "PAN" / f"new{r}.csv", country="PAN", start="2025-02", seed=200 + r)
            took: dict[str, float] = {}

            def call(stage: str, function: Callable[..., Any], *args: Any) -> Any:
                seconds, result = _timed(lambda: function(*args))
                took[stage] = seconds
                return result

            log(f"publication: pipeline run #{r + 1}")
            seconds, _ = _timed(lambda: stages.run(paths, call=call))
            runs.append(seconds)
            snapshots.append(took["publish"])
            shares.append(took["publish"] / seconds)
            publications.append(_pub_flows_seconds(root))
            shutil.rmtree(root)
    return {"run": median(runs), "snapshot": median(snapshots), "share": median(shares),
            "pub_flows": median(publications)}


def _pub_flows_seconds(root: Path) -> float:
    """pub_flows' own time in the run's dbt build, from dbt's run results."""
    import json

    from hmo.settings import Paths

    results = Paths(root).work / "dbt-target" / "run_results.json"
    for result in json.loads(results.read_text()).get("results", []):
        if result.get("unique_id", "").endswith(".pub_flows"):
            return float(result.get("execution_time", float("nan")))
    return float("nan")


def section(tables: list[dict[str, Any]], snapshot: dict[str, float], repeat: int, started: dt.datetime,
            load: tuple[str, str], command: str) -> list[str]:
    out = [
        START,
        "## 8. Publication: secondary suppression and the snapshot",
        "",
        f"Generated by `{command}` on {started:%Y-%m-%d %H:%M} UTC (code {git_state()}; load average {load[0]} / "
        f"{load[1]} at start / end). Medians of {repeat} repeat(s).",
        "",
        "Secondary suppression (publication/suppression.py, HiGHS) and the attacker that checks it, on generated "
        "tables (bench/tables.py, threshold 5). Baseline: a naive suppression of the same table (one "
        "complementary cell per primary), attacked the same way.",
        "",
        "| table | cells | primary | hidden | programs | suppression (s) | attacker (s) | cells the attacker "
        "pins | naive: hidden | naive (s) | naive: cells pinned | target | met? |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in tables:
        total = row["ours"] + row["ours_attack"]
        met = "yes" if total < TARGET and row["weak"] == 0 else "no"
        out.append(f"| {row['name']} | {row['cells']:,} | {row['primary']} | {row['hidden']} | {row['programs']} | "
                   f"{fmt(row['ours'])} | {fmt(row['ours_attack'])} | {row['weak']} | {row['naive_hidden']} | "
                   f"{fmt(row['naive'])} | {row['naive_weak']} | suppression and attacker < {TARGET:g} s, "
                   f"nothing pinned | {met} |")
    share = snapshot["share"]
    out += [
        "",
        "The snapshot (hmo.warehouse.publish: the warehouse copied and swapped in for readers) within the run "
        "it ends: `flows.stages.run` on a 10,000-row PAN file (bench.generate, about a quarter of its counts "
        "below 5) after a month of history.",
        "",
        "| run (s) | snapshot (s) | snapshot / run | pub_flows in the build (s) | target | met? |",
        "|---:|---:|---:|---:|---|---|",
        f"| {fmt(snapshot['run'])} | {fmt(snapshot['snapshot'])} | {share:.1%} | {fmt(snapshot['pub_flows'])} | "
        f"snapshot < {SNAPSHOT_TARGET:.0%} of the run | {'yes' if share < SNAPSHOT_TARGET else 'no'} |",
        END,
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.publication", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started, load_start = dt.datetime.now(dt.timezone.utc), loadavg()
    tables = measure_tables(args.repeat)
    snapshot = measure_snapshot(args.repeat)
    command = "python -m bench.publication" + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
    lines = section(tables, snapshot, args.repeat, started, (load_start, loadavg()), command)
    write_section(args.out, lines, START, END)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
