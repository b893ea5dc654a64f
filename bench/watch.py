"""How soon a file dropped into the inbox gets its receipt (issue #13): section 7 of docs/benchmarks.md.

`python -m bench.watch` measures this section alone (about 3 minutes) and
rewrites it in place in docs/benchmarks.md, between `<!-- watch:start -->` and
`<!-- watch:end -->`; `python -m bench.run` measures it too, with the rest.

Each figure is the wall time from a 10,000-row standard-layout file
(`bench.generate`, a new month each time) being copied into `inbox/PAN/` to
its receipt's JSON appearing in `outbox/PAN/`:

- served: `hmo serve` runs (as an operator starts it: the portal, the monthly
  schedule with its Prefect server, the inbox watcher), started once on a data
  directory of its own; its watcher runs the pipeline inside the service;
- baseline: `hmo run` in a fresh process right after the copy, the way a
  dropped file was answered before the watcher (an operator, or a cron job),
  on another data directory with the same history.

Before the timed drops each side answers one file untimed (the warehouse's
first build), so both measure a warehouse that holds data. The two sides
alternate within each repeat, so a busy machine slows them alike.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.check import running_service
from bench.report import kept_section, write_section
from bench.harness import (CHILD_ENV, Harness, ServedSection, StageFailed, add_scratch_arguments, command_line, fmt,
                           fresh_dir, hmo_command, human, loadavg, log, median, scratch_data)
from bench.phases import cached_generate

START, END = "<!-- watch:start -->", "<!-- watch:end -->"
TARGET = 3.0          # seconds, the median of the served drops (issue #13)
ROWS = 10_000
COUNTRY = "PAN"
RECEIPT_SECONDS = 300.0


@dataclass
class WatchResults(ServedSection):
    served: list[float] = field(default_factory=list)    # drop to receipt, `hmo serve` (s)
    baseline: list[float] = field(default_factory=list)  # drop to receipt, `hmo run` (s)


def _files(data: Path, count: int) -> list[Path]:
    return [cached_generate(data, f"watch_{COUNTRY.lower()}_2025_{i + 1:02d}_{human(ROWS)}.csv", ROWS,
                            country=COUNTRY, start=f"2025-{i + 1:02d}", seed=100 + i) for i in range(count)]


def _drop(source: Path, root: Path) -> float:
    """Copy `source` into the data directory's inbox as a statistician's tool would; the moment it is closed."""
    target = root / "inbox" / COUNTRY / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return time.perf_counter()


def _receipt_after(root: Path, source: Path, dropped: float) -> float:
    outbox = root / "outbox" / COUNTRY
    while not list(outbox.glob(f"{source.name}.*.json")):
        if time.perf_counter() - dropped > RECEIPT_SECONDS:
            raise StageFailed(f"no receipt for {source.name} in {outbox} after {RECEIPT_SECONDS:g} s")
        time.sleep(0.01)
    return time.perf_counter() - dropped


def _hmo_run(h: Harness, label: str, root: Path, source: Path) -> float:
    dropped = _drop(source, root)
    env = {**os.environ, **CHILD_ENV, "HMO_DATA_DIR": str(root)}
    for name in ("PREFECT_API_URL", "HMO_SERVE_URL"):  # `hmo run` as `make run` does it: its own Prefect server
        env.pop(name, None)
    h.command(label, [*hmo_command(), "run"], env)
    return _receipt_after(root, source, dropped)


def measure(h: Harness, data: Path, repeat: int, command: str = "python -m bench.run") -> WatchResults:
    res = WatchResults(command=command, repeat=repeat, started=dt.datetime.now(dt.timezone.utc), load_start=loadavg())
    try:
        files = _files(data, repeat + 1)
        runs = h.work / "runs"
        served_root, baseline_root = fresh_dir(runs / "watch_served"), fresh_dir(runs / "watch_baseline")
        log("watch: hmo serve starting")
        with running_service(h, res, served_root, "hmo-serve-watch.log") as url:
            if url is None:
                raise StageFailed(res.errors[-1])
            log("watch: the first file on each side (untimed: the warehouses' first build)")
            _receipt_after(served_root, files[0], _drop(files[0], served_root))
            _hmo_run(h, "watch-baseline-first", baseline_root, files[0])
            for r, source in enumerate(files[1:], 1):
                time.sleep(1.0)  # the served run's report follows its receipt: let it end, as between real drops
                log(f"watch: served drop #{r}")
                res.served.append(_receipt_after(served_root, source, _drop(source, served_root)))
                log(f"watch: baseline hmo run #{r}")
                res.baseline.append(_hmo_run(h, f"watch-baseline-{r}", baseline_root, source))
    except StageFailed as exc:
        res.errors.append(str(exc))
        log(f"FAILED: {exc}")
    res.finished = dt.datetime.now(dt.timezone.utc)
    res.load_end = loadavg()
    return res


def _cell(values: list[float]) -> str:
    return f"{fmt(median(values))} ({fmt(min(values))}–{fmt(max(values))})" if values else "not run"


def section(res: WatchResults) -> list[str]:
    """The section's markdown, markers included."""
    minutes = ((res.finished or res.started) - res.started).total_seconds() / 60
    served, baseline = median(res.served), median(res.baseline)
    ratio = f"{served / baseline:.2f}×" if res.served and res.baseline else "n/a"
    met = "yes" if res.served and served < TARGET else "no" if res.served else "n/a"
    out = [
        START,
        "## 7. `hmo serve`: a receipt for a dropped file",
        "",
        f"Generated by `{res.command}` on {res.started:%Y-%m-%d %H:%M} UTC ({minutes:.0f} min; code {res.git}; "
        f"load average {res.load_start} / {res.load_end} at start / end). Medians of {len(res.served)} drop(s) "
        "on each side, (min–max). Each figure is the wall time from a 10,000-row standard-layout file "
        "(`bench.generate`, a new month each time) being copied into `inbox/PAN/` to its receipt's JSON in "
        "`outbox/PAN/`.",
        "",
        "- **served**: `hmo serve` as an operator starts it (the portal, the monthly schedule with its Prefect "
        "server, the inbox watcher, flows/watcher.py), whose watcher runs the pipeline inside the service with "
        f"dbt and Great Expectations imported and the dbt manifest parsed; started once "
        f"({fmt(res.serve_start, 1)} s from spawning it to its serve.json; peak RSS "
        f"{fmt(res.serve_rss_mb, 0)} MiB when stopped).",
        "- **baseline**: `hmo run` in a fresh process right after the copy (how a dropped file was answered "
        "before the watcher: an operator or a cron job), its temporary Prefect server included, on another data "
        "directory with the same history.",
        "",
        "Before the timed drops each side answers one file untimed (the warehouse's first build).",
        "",
        "| file | served: drop → receipt (s) | baseline: `hmo run` (s) | served / baseline | target | met? |",
        "|---|---:|---:|---:|---|---|",
        f"| {human(ROWS)} rows, standard layout | {_cell(res.served)} | {_cell(res.baseline)} | {ratio} | "
        f"< {TARGET:g} s | {met} |",
    ]
    if res.errors:
        out += ["", "Problems in this run:", *(f"- {error}" for error in res.errors)]
    return [*out, END]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.watch", description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="timed drops on each side (median); default 5")
    add_scratch_arguments(p, "section 7")
    return p


def kept(path: Path) -> list[str]:
    return kept_section(path, START, END)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be >= 1")
    data = scratch_data(args.work)
    command = command_line("bench.watch", argv)
    res = measure(Harness(data.parent, {}), data, args.repeat, command)
    write_section(args.out, section(res), START, END)
    log(f"wrote section 7 of {args.out}")
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
