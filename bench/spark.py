"""The dbt project on Spark beside DuckDB (issue #15): section 9 of docs/benchmarks.md.

`python -m bench.spark` measures this section alone and rewrites it in place
in docs/benchmarks.md, between `<!-- spark:start -->` and `<!-- spark:end -->`.

For each size, a multi-country history (`bench.generate`, all 23 members, one
file per country) goes once through the pipeline (`flows.stages.run`, set-up,
not timed), which writes the DuckDB warehouse and the Parquet copies Spark
reads. Then, alternating, each target builds the whole project in a fresh
subprocess (`bench.measure dbt_build`): `dbt build --full-refresh` (seeds,
every model, tests, unit tests), then `dbt build` again with nothing new.
DuckDB's `pub_flows` (a Python model with secondary suppression, which Spark
has not) is left out of DuckDB's build so that both build the same nodes.
Spark runs as the `spark` profile says: `local[2]`, 2 GB of driver memory, the
JVM started inside the first build.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import kept_section, write_section
from bench.harness import (CHILD_ENV, Harness, Series, StageFailed, add_scratch_arguments, command_line, fmt, fresh_dir,
                           human, loadavg, log, parse_size, place, scratch_data)
from bench.phases import cached_generate, split_by_country

START, END = "<!-- spark:start -->", "<!-- spark:end -->"
SIZES = (100_000, 1_000_000)
EXCLUDE_ON_DUCKDB = ["pub_flows+"]


@dataclass
class SizeBuilds:
    rows: int
    duckdb: Series = field(default_factory=Series)
    spark: Series = field(default_factory=Series)
    errors: list[str] = field(default_factory=list)


@dataclass
class SparkResults:
    command: str
    started: dt.datetime
    load_start: str
    sizes: list[SizeBuilds]
    load_end: str = ""


def _history(h: Harness, data: Path, rows: int) -> Path:
    tag = human(rows)
    files = split_by_country(cached_generate(data, f"history_{tag}.csv", rows), data / f"history_{tag}_by_country")
    root = fresh_dir(h.work / "runs" / f"spark_{tag}")
    for country, path in files.items():
        place(path, root / "inbox" / country / path.name)
    log(f"spark {tag}: running the pipeline once (set-up: the warehouse and the Parquet copies)")
    run = h.stage("pipeline", f"spark-history-{tag}", root=str(root))
    if set(run.data["statuses"]) != {"accepted"}:
        raise StageFailed(f"history {tag} not accepted whole: {run.data['statuses']}")
    return root


def measure(h: Harness, data: Path, sizes: list[int], repeat: int, command: str) -> SparkResults:
    res = SparkResults(command, dt.datetime.now(dt.timezone.utc), loadavg(), [SizeBuilds(n) for n in sizes])
    for size in res.sizes:
        try:
            root = _history(h, data, size.rows)
            for i in range(repeat):
                for target, series in (("duckdb", size.duckdb), ("spark", size.spark)):
                    log(f"spark {human(size.rows)}: {target} build {i + 1}/{repeat}")
                    series.add(h.stage("dbt_build", f"{target}-{human(size.rows)}-{i + 1}", root=str(root),
                                       target=target, exclude=EXCLUDE_ON_DUCKDB if target == "duckdb" else []))
            facts = {(run.data["fct_flows_rows"], run.data["persons"]) for run in size.duckdb.runs + size.spark.runs}
            if len(facts) != 1:
                size.errors.append(f"fct_flows differs between the targets (rows, persons): {sorted(facts)}")
        except StageFailed as exc:
            size.errors.append(str(exc))
            log(f"FAILED: {exc}")
    res.load_end = loadavg()
    return res


def _crossover(res: SparkResults) -> str:
    """Where a line through each target's two sizes would cross (the build costs a + b·rows)."""
    done = [s for s in res.sizes if s.duckdb.runs and s.spark.runs and not s.errors]
    if len(done) < 2:
        return "Two sizes are needed to fit a line; the crossover was not estimated."
    small, large = done[0], done[-1]
    rows = large.rows - small.rows
    duck_slope = (large.duckdb.seconds - small.duckdb.seconds) / rows
    spark_slope = (large.spark.seconds - small.spark.seconds) / rows
    duck_fixed = small.duckdb.seconds - duck_slope * small.rows
    spark_fixed = small.spark.seconds - spark_slope * small.rows
    per_million = f"DuckDB {fmt(duck_slope * 1e6)} s and Spark {fmt(spark_slope * 1e6)} s per million rows " \
                  f"beyond a fixed {fmt(duck_fixed)} s and {fmt(spark_fixed)} s"
    if spark_slope >= duck_slope:
        return (f"Fitted on {human(small.rows)} and {human(large.rows)}: {per_million}. On this machine Spark "
                "costs more per row as well as more to start, so there is no crossover here: the lines never meet. "
                "Spark pays off where one machine does not suffice (rows beyond one disk or memory, or executors "
                "on many machines), which this 2-core machine cannot show.")
    crossing = (spark_fixed - duck_fixed) / (duck_slope - spark_slope)
    return f"Fitted on {human(small.rows)} and {human(large.rows)}: {per_million}; the lines cross near " \
           f"{human(int(crossing))} rows."


def section(res: SparkResults) -> list[str]:
    lines = [START, "## 9. The dbt project on Spark beside DuckDB", "",
             " ".join(line.strip() for line in (__doc__ or "").split("\n\n", 2)[2].splitlines()), "",
             f"Measured {res.started:%Y-%m-%d %H:%M} UTC by `{res.command}`; load average at start / end "
             f"{res.load_start} / {res.load_end}.", "",
             "| history rows | fct_flows rows | DuckDB full build (s) | Spark full build (s) | Spark / DuckDB "
             "| DuckDB again, nothing new (s) | Spark again (s) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for size in res.sizes:
        if not (size.duckdb.runs and size.spark.runs):
            lines.append(f"| {human(size.rows)} | — | — | — | — | — | — |")
            continue
        again = [sum(r.data["again"] for r in s.runs) / len(s.runs) for s in (size.duckdb, size.spark)]
        lines.append(f"| {human(size.rows)} | {size.duckdb.runs[0].data['fct_flows_rows']:,} "
                     f"| {fmt(size.duckdb.seconds)}{size.duckdb.spread()} | {fmt(size.spark.seconds)}{size.spark.spread()} "
                     f"| {fmt(size.spark.seconds / size.duckdb.seconds, 1)}× | {fmt(again[0])} | {fmt(again[1])} |")
    lines += ["", _crossover(res)]
    errors = [f"- {human(s.rows)}: {e}" for s in res.sizes for e in s.errors]
    if errors:
        lines += ["", "Errors:", *errors]
    else:
        lines += ["", "Both targets' fct_flows had the same rows and persons at every size (checked in each run)."]
    return [*lines, END]


def kept(path: Path) -> list[str]:
    return kept_section(path, START, END)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.spark", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=",".join(human(n) for n in SIZES), help="history sizes (default 100k,1M)")
    p.add_argument("--repeat", type=int, default=1, help="builds per target and size (median); default 1")
    add_scratch_arguments(p, "section 9")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be >= 1")
    data = scratch_data(args.work)
    command = command_line("bench.spark", argv)
    sizes = sorted(parse_size(s) for s in args.sizes.split(",") if s.strip())
    env = {**os.environ, **CHILD_ENV}
    env.pop("HMO_DATA_DIR", None)
    res = measure(Harness(data.parent, env), data, sizes, args.repeat, command)
    write_section(args.out, section(res), START, END)
    log(f"wrote section 9 of {args.out}")
    return 1 if any(s.errors for s in res.sizes) else 0


if __name__ == "__main__":
    sys.exit(main())
