"""Measure the pipeline against DuckDB baselines and rewrite docs/benchmarks.md.

`python -m bench.run` (what `make bench` calls) measures, for each size
(default 1M and 10M rows), each figure in the same run as its baseline:

1. ingest: `ingest.submissions.ingest_inbox` of one standard file, against
   DuckDB's `CREATE TABLE AS SELECT * FROM read_csv(..., all_varchar = true)`
   with `preserve_insertion_order = false` into a fresh database file;
2. validation: `flows.stages.validate` (dbt's code lists and views, then
   Great Expectations) on the same rows, against `prepare_batches` plus every
   rule's SQL run directly in DuckDB;
3. incremental run: one new country-month (10k rows) arriving in a warehouse
   that holds the size's rows of accepted history: `hmo run` end to end in a
   subprocess (the Prefect flow, with its temporary server), the same against
   a Prefect server started for the run (`PREFECT_API_URL`), and the same
   stages called without Prefect;
4. CBP layout: the real U.S. CBP export (`../shared/real`, read with its
   profile) from inbox to verdict, `flows.stages.ingest` then
   `flows.stages.validate`, against a standard file (`bench.generate`) of
   the same row count; measured in `--quick` runs too, skipped if the file
   is absent;
5. peak RSS of every one of those processes;
6. `hmo check` (`bench.check`): a 10-line and a 10,000-row file, each in a
   fresh process before the check template, without it (first-ever) and with
   it (cold), and the second call in one process (warm); `python -m
   bench.check` measures this section alone and rewrites it in place;
7. a receipt for a dropped file (`bench.watch`): a 10,000-row file copied
   into the inbox of a running `hmo serve`, against `hmo run` in a fresh
   process; `python -m bench.watch` measures this section alone.

Section 8 (publication: secondary suppression on 10,000-cell tables against a naive suppression, and the
snapshot's share of a run) is `python -m bench.publication`'s alone, not part of this run.

For the largest size, each stage that misses its target is run once more
under pyinstrument (if installed), and a missed ingest target also gets its
load statement taken apart in DuckDB (`bench.measure.INGEST_VARIANTS`).

Each measurement is a fresh subprocess (`bench.measure`); figures are medians
of `--repeat` runs.  Data and warehouses go to `--work` (default
/tmp/benchwork), never into the repository.  A block between
`<!-- notes:start -->` and `<!-- notes:end -->` in the output file is kept
across runs: it holds the hand-written analysis of the profiles.
"""
from __future__ import annotations


import argparse
import contextlib
import datetime as dt
import os
import shutil
import sys
from pathlib import Path

from bench.harness import (CBP_FILE, CHILD_ENV, COUNTRY, Harness, StageFailed, add_scratch_arguments, code_digest,
                           command_line, hmo_command, human, loadavg, log, outbox_of, parse_size, scratch_data)
from bench.phases import (SizeResults, build_history, cached_generate, free_month, measure_cbp, periods_of,
                          prefect_server, profile_missed, run_incremental, run_ingest_and_validation,
                          run_ingest_variants, split_by_country)
from bench.report import Report, kept_notes


DEFAULT_SIZES = [1_000_000, 10_000_000]
QUICK_SIZES = [10_000, 100_000]

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=None,
                   help="comma-separated row counts (10000, 1M, ...); default 1000000,10000000")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure (median); default 3")
    p.add_argument("--large-repeat", type=int, default=None,
                   help="runs per figure for sizes of 10M rows and more (default: --repeat)")
    p.add_argument("--quick", action="store_true", help="CI-size smoke run: 10k and 100k rows")
    p.add_argument("--new-rows", type=int, default=10_000, help="rows of the new country-month (default 10000)")
    p.add_argument("--no-validation", action="store_true", help="skip the validation measurement")
    p.add_argument("--no-incremental", action="store_true", help="skip the incremental-run measurement")
    p.add_argument("--no-flow", action="store_true",
                   help="incremental run: only the stages without Prefect, not `hmo run`")
    p.add_argument("--no-prefect-server", action="store_true",
                   help="incremental run: do not also time `hmo run` against a Prefect server started for the run")
    p.add_argument("--cbp", type=Path, default=CBP_FILE,
                   help="the CBP export of section 4 (default ../shared/real/...; absent: section skipped)")
    p.add_argument("--no-cbp", action="store_true", help="skip the CBP layout measurement")
    p.add_argument("--no-check", action="store_true",
                   help="skip the `hmo check` measurement (section 6 is kept as the file has it)")
    p.add_argument("--no-watch", action="store_true",
                   help="skip the `hmo serve` drop-to-receipt measurement (section 7 is kept as the file has it)")
    p.add_argument("--no-profile", action="store_true", help="do not profile the stages that miss a target")
    add_scratch_arguments(p, "sections")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.sizes:
        sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    else:
        sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    sizes = sorted(set(sizes))
    if args.repeat < 1 or any(n < 100 for n in sizes):
        raise SystemExit("--repeat must be >= 1 and sizes >= 100 rows")
    data = scratch_data(args.work)
    work = data.parent
    env = {**os.environ, **CHILD_ENV}
    env.pop("HMO_DATA_DIR", None)
    env.pop("PREFECT_API_URL", None)  # `hmo run` as `make run` does it: a temporary server per run
    harness = Harness(work, env)
    command = command_line("bench.run", argv)
    report = Report(args=args, command=command, started=dt.datetime.now(dt.timezone.utc),
                    load_start=loadavg(), results=[SizeResults(n) for n in sizes], new_file=None,
                    new_month=None, notes=kept_notes(args.out),
                    flow_mode="not run" if args.no_flow else
                    "wall time of `hmo run` (`HMO_DATA_DIR` set) in a subprocess, Prefect flow included: with "
                    "no `PREFECT_API_URL`, the flow starts a temporary Prefect server, which is part of the time")

    def repeat_for(n: int) -> int:
        return args.large_repeat if args.large_repeat and n >= 10_000_000 else args.repeat

    # 1 and 2: ingest and validation, size by size
    for res in report.results:
        try:
            source = cached_generate(data, f"{COUNTRY.lower()}_{human(res.rows)}.csv", res.rows, country=COUNTRY)
            run_ingest_and_validation(harness, res, source, repeat_for(res.rows), not args.no_validation)
        except StageFailed as exc:
            res.errors.append(str(exc))
            log(f"FAILED: {exc}")

    # 4 (measured before 3, which is slow): the CBP layout; it is small, so --quick runs it too
    report.cbp = None if args.no_cbp else measure_cbp(harness, args.cbp.resolve(), data, args.repeat)

    # 6: `hmo check`, a few minutes whatever the sizes
    if args.no_check:
        from bench.check import END, START
        from bench.report import kept_section

        report.kept_check = kept_section(args.out, START, END)
    else:
        from bench.check import measure as measure_check

        report.check = measure_check(harness, data, args.repeat, report.command)

    # 7: a receipt for a dropped file, from `hmo serve` and from `hmo run`, a few minutes
    if args.no_watch:
        from bench.watch import kept as kept_watch

        report.kept_watch = kept_watch(args.out)
    else:
        from bench.watch import measure as measure_watch

        report.watch = measure_watch(harness, data, max(args.repeat, 3), report.command)

    # 3: incremental run
    snapshots: dict[int, Path] = {}
    if not args.no_incremental:
        try:
            histories = {res.rows: cached_generate(data, f"history_{human(res.rows)}.csv", res.rows)
                         for res in report.results}
            taken: set[str] = set()
            for path in histories.values():
                taken |= periods_of(path, COUNTRY)
            month = free_month(taken)
            report.new_month = month
            report.new_file = cached_generate(data, f"new_{COUNTRY.lower()}_{month}_{human(args.new_rows)}.csv",
                                              args.new_rows, country=COUNTRY, start=month)
            if periods_of(report.new_file, COUNTRY) & taken:
                raise StageFailed(f"the new file {report.new_file.name} overlaps the history")
        except StageFailed as exc:
            report.results[0].errors.append(str(exc))
            histories = {}
        with contextlib.ExitStack() as stack:
            server = None
            if histories and not args.no_flow and not args.no_prefect_server:
                server = stack.enter_context(prefect_server(harness))
            report.server = server is not None
            for res in report.results:
                if res.rows not in histories:
                    continue
                try:
                    files = split_by_country(histories[res.rows], data / f"history_{human(res.rows)}_by_country")
                    snapshots[res.rows] = build_history(harness, res, files)
                    run_incremental(harness, res, snapshots[res.rows], report.new_file, repeat_for(res.rows),
                                    not args.no_flow, hmo_command(), server)
                except StageFailed as exc:
                    res.errors.append(str(exc))
                    log(f"FAILED: {exc}")

    # profiles of what missed its target, at the largest size measured
    if not args.no_profile and "ingest" in report.missed(report.results[-1]):
        largest = report.results[-1]
        try:
            run_ingest_variants(harness, largest, data / f"{COUNTRY.lower()}_{human(largest.rows)}.csv",
                                min(2, repeat_for(largest.rows)))
        except StageFailed as exc:
            largest.errors.append(f"ingest experiments: {exc}")
    if not args.no_profile:
        try:
            import pyinstrument  # noqa: F401

            have_profiler = True
        except ImportError:
            have_profiler = False
            log("pyinstrument is not installed: no profiles")
        if have_profiler:
            largest = report.results[-1]
            missed = report.missed(largest)
            if missed:
                source = data / f"{COUNTRY.lower()}_{human(largest.rows)}.csv"
                profile_missed(harness, largest, source, snapshots.get(largest.rows), report.new_file, missed)
    for path in snapshots.values():
        path.unlink(missing_ok=True)
        shutil.rmtree(outbox_of(path), ignore_errors=True)

    report.finished = dt.datetime.now(dt.timezone.utc)
    report.load_end = loadavg()
    report.code_end = code_digest()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.markdown())
    log(f"wrote {args.out}")
    return 1 if (any(r.errors for r in report.results) or (report.cbp and report.cbp.errors)
                 or (report.check and report.check.errors) or (report.watch and report.watch.errors)) else 0


if __name__ == "__main__":
    sys.exit(main())
