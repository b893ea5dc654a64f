"""How long `hmo check` makes a statistician wait (issue #10): section 6 of docs/benchmarks.md.

`python -m bench.check` measures this section alone (about 4 minutes) and
rewrites it in place in docs/benchmarks.md, between `<!-- check:start -->` and
`<!-- check:end -->`; `python -m bench.run` measures it too, with the rest.

Each figure is the wall time of a fresh `hmo check <file>` process, interpreter
start-up and imports included (what the statistician waits for), on a 10-line
file and on a 10,000-row standard-layout file (`bench.generate`):

- before: `HMO_CHECK_TEMPLATE=off`, dbt parses the project and builds the seeds
  and views in the scratch warehouse on every check (the path before templates);
- first-ever: a fresh data directory, so the template is built first;
- cold: the template present (every check after the first of a project version);
- warm: `flows.check.check` called twice in one process, the second call timed
  inside it: Great Expectations imported and the template ready, as the
  long-running service holds them (the service's own share of a served check);
- served: a fresh `hmo check <file>` process handed to `hmo serve`, which runs
  (started once, before the repeats, on a free port) with the same data
  directory as the `hmo check` processes, found through its serve.json: the
  figure issue #10 sets a target for.

The modes alternate within each repeat, so a busy machine slows them alike.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from bench.harness import (CHILD_ENV, Harness, Run, Series, ServedSection, StageFailed, add_scratch_arguments,
                           command_line, fmt, fresh_dir, hmo_command, human, loadavg, log, median, met, scratch_data,
                           tail)
from bench.phases import cached_generate
from bench.report import write_section
from hmo.settings import PROJECT_ROOT

START, END = "<!-- check:start -->", "<!-- check:end -->"
COUNTRY = "PAN"
TARGETS = {"cold": 6.0, "served": 2.0}  # seconds for the 10,000-row file (issue #10)
TARGET_ROWS = 10_000
SMALL_NATIONALITIES = ["VEN", "HTI", "COL", "ECU", "CUB", "CHN", "IND", "AFG", "PER"]
MODES = ("before", "first", "cold", "warm", "served")
SERVE_START_SECONDS = 300  # a fresh data directory: the template is built before it listens
SERVED = "checked by hmo serve at "


@dataclass
class FileResults:
    label: str
    path: Path
    rows: int
    before: Series = field(default_factory=Series)
    first: Series = field(default_factory=Series)
    cold: Series = field(default_factory=Series)
    warm_first_call: Series = field(default_factory=Series)
    warm: Series = field(default_factory=Series)
    served: Series = field(default_factory=Series)


@dataclass
class CheckResults(ServedSection):
    files: list[FileResults] = field(default_factory=list)


def small_file(data: Path) -> Path:
    """Ten lines (header and nine rows): the size of the complaint in issue #10."""
    path = data / "check_pan_10_lines.csv"
    lines = ["reporting_country,period,flow_type,border_point,counterpart_country,sex,age,nationality,count,obs_status"]
    lines += [f"{COUNTRY},2024-03,IRREGULAR_TRANSIT,DARIEN,COL,_T,_T,{nat},{10 * (i + 1)},A"
              for i, nat in enumerate(SMALL_NATIONALITIES)]
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def _env(root: Path, template: bool) -> dict[str, str]:
    env = {**os.environ, **CHILD_ENV, "HMO_DATA_DIR": str(root)}
    env.pop("PREFECT_API_URL", None)
    env.pop("HMO_CHECK_TEMPLATE", None)
    env.pop("HMO_SERVE_URL", None)  # handed over only where a mode says so, through serve.json
    if not template:
        env["HMO_CHECK_TEMPLATE"] = "off"
    return env


def _hmo_check(h: Harness, label: str, root: Path, file: Path, template: bool, served: str | None = None) -> Run:
    # Exit 2 is a rejected file, which is still an answer; anything else is not.
    run, code, log_path = h._spawn(label, [*hmo_command(), "check", str(file), "--country", COUNTRY],
                                   _env(root, template))
    output = log_path.read_text(errors="replace")
    if code not in (0, 2) or "ACEPTADO / ACCEPTED" not in output:
        raise StageFailed(f"hmo check ({label}) exited with {code}, not accepted; see {log_path}")
    if "(prueba / dry run)" not in output:
        raise StageFailed(f"hmo check ({label}): the receipt does not say it is a dry run; see {log_path}")
    if served is not None and f"{SERVED}{served}" not in output:
        raise StageFailed(f"hmo check ({label}) was not handed to hmo serve at {served}; see {log_path}")
    if served is None and SERVED in output:
        raise StageFailed(f"hmo check ({label}) was handed to a service; see {log_path}")
    return run


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


@contextlib.contextmanager
def running_service(h: Harness, res: ServedSection, root: Path, log_name: str = "hmo-serve.log") -> Iterator[str | None]:
    """`hmo serve` on a free port (`--port 0`) for `root`; its URL once serve.json names it (None, the
    problem recorded, if it does not start). Stopped with SIGTERM at the end, which must leave no
    serve.json and exit 0 or 143. `res` records the problems, its start-up and its peak RSS."""
    log_path = h.logs / log_name
    state = root / "work" / "serve.json"
    with log_path.open("wb") as sink:
        start = time.perf_counter()
        process = subprocess.Popen([*hmo_command(), "serve", "--port", "0"], cwd=PROJECT_ROOT, env=_env(root, True),
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        while not state.exists():
            if process.poll() is not None or time.perf_counter() - start > SERVE_START_SECONDS:
                res.errors.append(f"hmo serve did not start (exit {process.poll()}); see {log_path}:\n"
                                  f"{tail(log_path)}")
                log(f"FAILED: {res.errors[-1]}")
                yield None
                return
            time.sleep(0.05)
        res.serve_start = time.perf_counter() - start
        url = json.loads(state.read_text())["url"]
        log(f"hmo serve at {url} after {res.serve_start:.1f} s")
        yield url
    finally:
        if process.poll() is None:
            res.serve_rss_mb = _peak_rss_mb(process.pid)
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if code not in (0, 128 + signal.SIGTERM) or state.exists() or "Traceback" in log_path.read_text():
                res.errors.append(f"hmo serve did not stop cleanly on SIGTERM (exit {code}); see {log_path}")


def _warm(h: Harness, label: str, root: Path, file: Path) -> tuple[Run, Run]:
    result = h.logs / f"{label}.json"
    command = [sys.executable, "-m", "bench.check", "--child", str(root), str(file), str(result)]
    run, code, log_path = h._spawn(label, command, _env(root, True))
    if code != 0 or not result.exists():
        raise StageFailed(f"in-process checks ({label}) exited with {code}; see {log_path}")
    data = json.loads(result.read_text())
    first = Run(seconds=data["first"], wall=data["first"], rss_mb=run.rss_mb, others=run.others)
    second = Run(seconds=data["second"], wall=data["second"], rss_mb=run.rss_mb, others=run.others)
    return first, second


def child(root: str, file: str, result: str) -> int:
    """Inside the measured process: the same file checked twice, each call timed."""
    from flows.check import check
    from hmo.settings import Paths

    paths, times, verdicts = Paths(Path(root)), [], []
    for _ in range(2):
        start = time.perf_counter()
        verdicts.append(check(paths, Path(file), COUNTRY).verdict)
        times.append(time.perf_counter() - start)
    if verdicts != ["accepted", "accepted"]:
        print(f"verdicts {verdicts}", file=sys.stderr)
        return 1
    Path(result).write_text(json.dumps({"first": times[0], "second": times[1]}))
    return 0


def measure(h: Harness, data: Path, repeat: int, command: str = "python -m bench.run") -> CheckResults:
    res = CheckResults(command=command, repeat=repeat, started=dt.datetime.now(dt.timezone.utc),
                       load_start=loadavg())
    try:
        big = cached_generate(data, f"check_{COUNTRY.lower()}_{human(TARGET_ROWS)}.csv", TARGET_ROWS, country=COUNTRY)
        res.files = [FileResults("10-line file", small_file(data), len(SMALL_NATIONALITIES)),
                     FileResults("standard layout, `bench.generate`", big, TARGET_ROWS)]
        runs = h.work / "runs"
        served_root = fresh_dir(runs / "check_served")
        log("hmo serve: starting (a fresh data directory: it builds the template first)")
        with running_service(h, res, served_root) as url:
            _measure_modes(h, res, runs, served_root, url, repeat)
    except StageFailed as exc:
        res.errors.append(str(exc))
        log(f"FAILED: {exc}")
    res.finished = dt.datetime.now(dt.timezone.utc)
    res.load_end = loadavg()
    return res


def _measure_modes(h: Harness, res: CheckResults, runs: Path, served_root: Path, url: str | None,
                   repeat: int) -> None:
    for r in range(repeat):
        for f in res.files:
            tag = human(f.rows)
            log(f"hmo check {tag}: before (dbt on every check) #{r + 1}")
            f.before.add(_hmo_check(h, f"check-before-{tag}-{r + 1}", fresh_dir(runs / "check_before"),
                                    f.path, template=False))
            # The first-ever check leaves its template, which the cold and warm runs then find.
            root = fresh_dir(runs / "check_template")
            log(f"hmo check {tag}: first-ever (template absent) #{r + 1}")
            f.first.add(_hmo_check(h, f"check-first-{tag}-{r + 1}", root, f.path, template=True))
            log(f"hmo check {tag}: cold (template present) #{r + 1}")
            f.cold.add(_hmo_check(h, f"check-cold-{tag}-{r + 1}", root, f.path, template=True))
            log(f"hmo check {tag}: warm (second call in one process) #{r + 1}")
            first_call, second_call = _warm(h, f"check-warm-{tag}-{r + 1}", root, f.path)
            f.warm_first_call.add(first_call)
            f.warm.add(second_call)
            if url is not None:
                log(f"hmo check {tag}: served (handed to hmo serve) #{r + 1}")
                f.served.add(_hmo_check(h, f"check-served-{tag}-{r + 1}", served_root, f.path, template=True,
                                        served=url))


def _serve_start(res: CheckResults) -> str:
    return f"{res.serve_start:.1f} s" if res.serve_start == res.serve_start else "start-up not measured"


def _cell(series: Series) -> str:
    return f"{fmt(series.seconds)}{series.spread()}" if series.runs else "not run"


def section(res: CheckResults) -> list[str]:
    """The section's markdown, markers included."""
    minutes = ((res.finished or res.started) - res.started).total_seconds() / 60
    out = [
        START,
        "## 6. `hmo check` (dry run)",
        "",
        f"Generated by `{res.command}` on {res.started:%Y-%m-%d %H:%M} UTC ({minutes:.0f} min; code "
        f"{res.git}; load average {res.load_start} / {res.load_end} at start / end). Medians of "
        f"{res.repeat} run(s), (min–max). Each figure but the warm call and the first call of its process is "
        "the wall time of a fresh `hmo check <file> --country PAN` process (`HMO_DATA_DIR` set), interpreter "
        "start-up and imports included, the modes alternating within each repeat:",
        "",
        "- **before**: `HMO_CHECK_TEMPLATE=off`, the path before the template: dbt parses the project and "
        "builds the seeds and views in the scratch warehouse on every check (the code before the template "
        "differed only in importing Great Expectations after the load rather than during it);",
        "- **first-ever**: a fresh data directory, so the check first builds the template "
        "(`<data>/work/check-template-<key>.duckdb`, once per dbt project version and raw schema);",
        "- **cold**: a new process, the template present (every check after the first of a project version);",
        "- **warm**: `flows.check.check` called twice in one process, the second call timed inside it "
        "(Great Expectations imported, the template ready): the service's own share of a served check, "
        "without the HTTP request. The first call of that process, timed the same way, is shown for comparison;",
        "- **served**: a fresh `hmo check` process handed to `hmo serve` (flows/service.py), which runs "
        "on a free port with the same data directory as the `hmo check` processes and is found through "
        "`<data>/work/serve.json`: the `hmo check` process sends the file over HTTP (standard library only, "
        "no Great Expectations or dbt imported) and prints the answer. The service was started once, "
        f"before the repeats, in a fresh data directory ({_serve_start(res)} from spawning it to its "
        "serve.json, the template built and Great Expectations imported in that time), and idled between "
        "the served runs; it is stopped with SIGTERM at the end.",
        "",
        f"Targets (issue #10, the {human(TARGET_ROWS)}-row file): cold under {TARGETS['cold']:g} s, "
        f"handed to a running `hmo serve` under {TARGETS['served']:g} s (judged on the served figure).",
        "",
        "| file | rows | before: dbt on every check (s) | first-ever: template absent (s) | cold: template "
        "present (s) | served: handed to `hmo serve` (s) | warm: 2nd call in one process (s) | 1st call in "
        "that process (s) | target | met? (cold / served) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for f in res.files:
        judged = f.rows >= TARGET_ROWS
        verdict = (f"{met(f.cold.seconds < TARGETS['cold']) if f.cold.runs else 'n/a'} / "
                   f"{met(f.served.seconds < TARGETS['served']) if f.served.runs else 'n/a'}") if judged \
            else "information"
        target = f"< {TARGETS['cold']:g} s / < {TARGETS['served']:g} s" if judged else ""
        out.append(f"| {f.label} | {f.rows} | {_cell(f.before)} | {_cell(f.first)} | {_cell(f.cold)} | "
                   f"{_cell(f.served)} | {_cell(f.warm)} | {_cell(f.warm_first_call)} | {target} | {verdict} |")
    rss = [f"{human(f.rows)} rows: {fmt(max(s.rss_mb for s in (f.before, f.first, f.cold) if s.runs), 0)} MiB"
           for f in res.files if f.cold.runs]
    if rss:
        served_rss = [f"{human(f.rows)} rows: {fmt(f.served.rss_mb, 0)} MiB" for f in res.files if f.served.runs]
        out += ["", "Peak RSS of the `hmo check` processes (largest of before, first-ever and cold): "
                + ", ".join(rss) + "." + (f" Handed to `hmo serve`: {', '.join(served_rss)}; the service itself "
                                          f"peaked at {fmt(res.serve_rss_mb, 0)} MiB." if served_rss else "")]
    # Not the served runs: there the check's own work is the service's, another process.
    busy = [r.others for f in res.files for s in (f.before, f.first, f.cold, f.warm) for r in s.runs
            if r.others == r.others]
    if busy:
        out += ["", f"CPU time other processes used while the measured processes ran, as a share of all "
                f"{os.cpu_count()} cores: median {100 * median(busy):.0f} %, max {100 * max(busy):.0f} % "
                "(a shared machine: figures taken while it is busy are slower; the served runs are left out, "
                "since their check runs in the service, another process)."]
    if res.errors:
        out += ["", "Problems seen during the run:", ""] + [f"- {e}" for e in res.errors]
    out += ["", "Reproduce this section alone (rewrites it in docs/benchmarks.md, the rest of the file is kept):",
            "", "```sh", "python -m bench.check              # 3 runs of each mode", "```", "", END]
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs of each mode (median); default 3")
    add_scratch_arguments(p, "section 6")
    p.add_argument("--child", nargs=3, metavar=("ROOT", "FILE", "RESULT"), help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        return child(*args.child)
    if args.repeat < 1:
        raise SystemExit("--repeat must be >= 1")
    data = scratch_data(args.work)
    command = command_line("bench.check", argv)
    res = measure(Harness(data.parent, {}), data, args.repeat, command)
    write_section(args.out, section(res), START, END)
    log(f"wrote section 6 of {args.out}")
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
