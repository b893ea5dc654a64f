"""What every benchmark shares: its settings, subprocess runs, series of timings, the machine, formatting."""
from __future__ import annotations


import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hmo.settings import PROJECT_ROOT

DEFAULT_WORK = Path("/tmp/benchwork")
DEFAULT_OUT = PROJECT_ROOT / "docs" / "benchmarks.md"
NOTES_START, NOTES_END = "<!-- notes:start -->", "<!-- notes:end -->"
COUNTRY = "PAN"
CBP_FILE = PROJECT_ROOT.parent / "shared" / "real" / "nationwide-encounters-fy22-fy25-state.csv"
CBP_PROFILE = PROJECT_ROOT / "ingest" / "profiles" / "USA-cbp-nationwide-encounters.yml"
CBP_COUNTRY = "USA"
TARGETS = {
    "ingest_ratio": 1.5,
    "validate_ratio": 2.0,
    "incremental_seconds": 20.0,
    "incremental_ratio": 1.3,
    "cbp_ratio": 3.0,  # issue #3: the CBP file end to end under 3 times a standard file of its row count
    "rss_mb": 2048.0,
}
# Issue #4 sets the ingest and validation ratios on a 10M-row file; smaller
# sizes are measured for information (fixed start-up costs dominate them).
RATIO_TARGET_ROWS = 10_000_000
CHILD_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "false",
}


class StageFailed(RuntimeError):
    pass


# --------------------------------------------------------------------------- helpers


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    factor = 1
    if text.endswith("k"):
        factor, text = 1_000, text[:-1]
    elif text.endswith("m"):
        factor, text = 1_000_000, text[:-1]
    return int(float(text) * factor)


def human(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def add_scratch_arguments(parser: argparse.ArgumentParser, section: str) -> None:
    """--work and --out, which every benchmark that rewrites a section of docs/benchmarks.md takes."""
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"scratch directory (default {DEFAULT_WORK})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"markdown whose {section} is rewritten")


def scratch_data(work: Path) -> Path:
    """The data folder in `work`, created; `work` must lie outside the repository, since a benchmark deletes
    and rewrites what is in it."""
    work = work.resolve()
    if work == PROJECT_ROOT or PROJECT_ROOT in work.parents:
        raise SystemExit(f"--work must be outside the repository: {work}")
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    return data


def command_line(module: str, argv: list[str] | None) -> str:
    """The command as it was typed, for the section's header."""
    return (f"python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:])).strip()


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def place(source: Path, target: Path) -> None:
    """Put a (cached) data file where the pipeline expects it: a hard link when possible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def copy_warehouse(source: Path, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, root / "warehouse.duckdb")
    # The receipts already given belong to the state: without them a run answers the whole history again.
    if outbox_of(source).is_dir():
        shutil.copytree(outbox_of(source), root / "outbox")


def outbox_of(snapshot: Path) -> Path:
    return snapshot.with_suffix(".outbox")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Run:
    """One subprocess: its measured figure, wall time, peak RSS and payload."""

    seconds: float
    wall: float
    rss_mb: float
    data: dict[str, Any] = field(default_factory=dict)
    others: float = float("nan")  # share of the machine's CPUs busy with other processes meanwhile


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    def add(self, run: Run) -> None:
        self.runs.append(run)

    @property
    def seconds(self) -> float:
        return median([r.seconds for r in self.runs])

    @property
    def wall(self) -> float:
        return median([r.wall for r in self.runs])

    @property
    def rss_mb(self) -> float:
        return max((r.rss_mb for r in self.runs), default=float("nan"))

    def spread(self) -> str:
        values = [r.seconds for r in self.runs]
        if len(values) < 2:
            return ""
        return f" ({min(values):.2f}–{max(values):.2f})"

    def parts(self, key: str = "parts") -> dict[str, float]:
        names: list[str] = []
        for run in self.runs:
            for name in run.data.get(key, {}):
                if name not in names:
                    names.append(name)
        return {name: median([r.data.get(key, {}).get(name, 0.0) for r in self.runs]) for name in names}


class Harness:
    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work = work
        self.env = env
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._counter = 0

    def _spawn(self, label: str, command: list[str], env: dict[str, str]) -> tuple[Run, int, Path]:
        self._counter += 1
        log_path = self.logs / f"{self._counter:03d}-{label}.log"
        with log_path.open("wb") as sink:
            busy = busy_cpu_seconds()
            start = time.perf_counter()
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
            busy = busy_cpu_seconds() - busy
        process.returncode = os.waitstatus_to_exitcode(status)
        others = max(0.0, busy - usage.ru_utime - usage.ru_stime) / (wall * (os.cpu_count() or 1))
        return Run(seconds=wall, wall=wall, rss_mb=usage.ru_maxrss / 1024, others=others), process.returncode, log_path

    def stage(self, stage: str, label: str, **kwargs: Any) -> Run:
        result_path = self.logs / f"{self._counter + 1:03d}-{label}.json"
        command = [sys.executable, "-m", "bench.measure", stage, json.dumps(kwargs), str(result_path)]
        run, code, log_path = self._spawn(label, command, self.env)
        if code != 0 or not result_path.exists():
            raise StageFailed(f"{stage} ({label}) exited with {code}; see {log_path}:\n{tail(log_path)}")
        run.data = json.loads(result_path.read_text())
        run.seconds = float(run.data["seconds"])
        return run

    def command(self, label: str, command: list[str], env: dict[str, str]) -> tuple[Run, str]:
        run, code, log_path = self._spawn(label, command, {**self.env, **env})
        output = log_path.read_text(errors="replace")
        if code != 0:
            raise StageFailed(f"{' '.join(command)} exited with {code}; see {log_path}:\n{tail(log_path)}")
        return run, output


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all processes), from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- data


def machine() -> list[tuple[str, str]]:
    import duckdb

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return [
        ("nproc", str(os.cpu_count())),
        ("RAM", ram),
        ("CPU", cpu),
        ("DuckDB", duckdb.__version__),
        ("Python", platform.python_version()),
        ("OS", platform.platform()),
    ]


def git_state() -> str:
    """The commit measured, and whether the working tree had changes (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, check=True).stdout.split("\n")
        changed = sorted({line[3:].split("/")[0] for line in dirty if line.strip()})
        return head + (f" with uncommitted changes in {', '.join(changed)}" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


PIPELINE_CODE = ["ingest", "expectations", "harmonise", "flows", "report", "dbt_project"]


def code_digest() -> str:
    """A digest of the pipeline's code, to tell whether it changed while the benchmark ran."""
    import hashlib

    digest = hashlib.sha256()
    for folder in PIPELINE_CODE:
        for path in sorted((PROJECT_ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".sql", ".yml", ".yaml", ".csv"):
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def ratio(a: float, b: float) -> float:
    return a / b if b and a == a and b == b else float("nan")


def hmo_command() -> list[str]:
    script = Path(sys.executable).parent / "hmo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "flows.cli"]


@dataclass
class ServedSection:
    """What a section measured around a running `hmo serve` records (bench.check, bench.watch)."""

    command: str
    repeat: int
    started: dt.datetime
    load_start: str
    git: str = field(default_factory=git_state)
    errors: list[str] = field(default_factory=list)
    finished: dt.datetime | None = None
    load_end: str = ""
    serve_start: float = float("nan")     # `hmo serve` spawned until its serve.json appeared (s)
    serve_rss_mb: float = float("nan")    # the service's peak RSS when stopped
