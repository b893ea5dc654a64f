"""Kill trials: SIGKILL the pipeline anywhere, then check that the next run converges.

`python -m bench.kill --trials 50` runs, in data directories copied from the
template warehouse (bench.fuzz.template) and holding the same inbox
(`write_kill_inputs`: revisions, a rejection, a duplicate, a workbook, a
Latin-1 file, refused links and uploads):

- a reference: the stages uninterrupted (in this process), and `hmo run`
  uninterrupted as a subprocess, which also times each command for the
  random delays;
- boundary trials: `hmo run` (the Prefect flow with its temporary server) or
  `hmo ingest` / `hmo build` with HMO_KILL_AFTER=<stage>, for every stage;
- inside trials: `hmo ingest` SIGKILLed as its n-th file has been received
  (`arm_kill_at`: the harness wraps a function in the child; no product change);
- random trials: `hmo run`, `hmo build` or `hmo ingest` SIGKILLed after a
  random delay (sometimes the next run is killed too, and sometimes the data
  directory starts empty, so the kill can land in the first seed build);

then one `hmo run` (or, with --recover inprocess, `flows.stages.run`) must
end cleanly, and `check_converged` asserts: the published marts.fct_flows is
the reference's (every column but submission_id), every file read has a
receipt with the reference's verdict (several receipts for one file are
counted as double answers), what was refused is still refused and in place,
every file read is archived byte-identical and out of the inbox, nothing of
the archive as it was after the kill is gone, and no process of the trial is
left (scanning /proc/*/environ for the trial's PREFECT_HOME and data
directory, as tests/flows/test_server.py does). Results go to
bench/out/kill.json.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import fuzz
from bench.hostile import (HEADER, MTIME_BASE, NATIONALITY_NAMES, Item, Manifest, csv_bytes, valid_rows,
                           xlsx_bytes)
from bench.harness import CHILD_ENV as BENCH_ENV
from flows.stages import STAGES
from hmo.settings import PROJECT_ROOT, Paths

OUT = PROJECT_ROOT / "bench" / "out"
# A kill after each stage but the report, in the pipeline's own order.
BOUNDARIES = STAGES[:STAGES.index("report")]
INSIDE_INGEST = (1, 3, 6)  # kill `hmo ingest` as the n-th file has been received
MARTS_SQL = "select * exclude (submission_id) from marts.fct_flows order by all"
CHILD_ENV = {**BENCH_ENV, "PREFECT_LOGGING_LEVEL": "WARNING"}
# A server told by the kernel (PR_SET_PDEATHSIG) that its parent died stops within this.
ORPHAN_GRACE_SECONDS = 20.0


# --------------------------------------------------------------------------- inputs


def write_kill_inputs(inbox: Path, seed: int = 0, many_rows: int = 3000) -> Manifest:
    """The same inbox for every trial: what a kill could lose, answer twice or publish wrongly."""
    rng = random.Random(seed)
    manifest = Manifest(inbox, seed)
    position = 0

    def put(kind: str, relative: str, data: bytes, expect: str | None, read: bool = True,
            duplicate_of: str | None = None) -> Item:
        nonlocal position
        path = inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (MTIME_BASE + position, MTIME_BASE + position))
        position += 1
        parts = relative.split("/")
        item = Item(kind, relative, "file", read, parts[0] if read and len(parts) == 2 else None, expect,
                    hashlib.sha256(data).hexdigest(), len(data), duplicate_of)
        manifest.items.append(item)
        return item

    def link(kind: str, relative: str, target: str) -> None:
        nonlocal position
        path = inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
        position += 1
        manifest.items.append(Item(kind, relative, "link", False, target=target))

    january = valid_rows(rng, "PAN", n=6, period="2024-01", flow="IRREGULAR_TRANSIT")
    put("valid", "PAN/darien_2024_01.csv", csv_bytes(HEADER, january), "accepted")
    put("valid", "PAN/darien_2024_02.csv",
        csv_bytes(HEADER, valid_rows(rng, "PAN", n=5, period="2024-02", flow="IRREGULAR_TRANSIT")), "accepted")
    revised = [row[:8] + [str(int(row[8]) + 7)] + row[9:] for row in january[:4]]
    put("revision", "PAN/darien_2024_01_revisado.csv", csv_bytes(HEADER, revised), "accepted")
    workbook = xlsx_bytes(HEADER, valid_rows(rng, "CRI", n=4, period="2024-03", flow="ENTRY"))
    put("valid_xlsx", "CRI/entradas_marzo.xlsx", workbook, "accepted")
    bad = valid_rows(rng, "CRI", n=3, period="2024-03", flow="EXIT")
    bad[1][7] = "Narnia"
    put("rejected", "CRI/salidas_marzo.csv", csv_bytes(HEADER, bad), "rejected")
    put("duplicate", "CRI/entradas_marzo (copia).xlsx", workbook, "duplicate", duplicate_of="CRI/entradas_marzo.xlsx")
    spanish = [row[:7] + [NATIONALITY_NAMES.get(row[7], row[7])] + row[8:]
               for row in valid_rows(rng, "MEX", n=5, period="2023-11", flow="ENCOUNTER")]
    header_es = ["país_reporte", "periodo", "tipo_flujo", "punto_fronterizo", "pais_contraparte", "sexo", "edad",
                 "nacionalidad", "cantidad", "estado_obs"]
    put("valid_es_latin1", "MEX/eventos_noviembre.csv", csv_bytes(header_es, spanish, ";", "cp1252"), "accepted")
    put("many_rows", "COL/entradas_2023.csv",
        csv_bytes(HEADER, valid_rows(rng, "COL", n=many_rows, period="2023-06", flow="ENTRY")), "accepted")
    formula = valid_rows(rng, "COL", n=2, period="2023-07", flow="ENTRY")
    formula[0][3] = '=HYPERLINK("http://x","y")'
    put("formula_hyperlink", "COL/formula.csv", csv_bytes(HEADER, formula), "rejected")
    put("partial_upload", "COL/subiendo.csv.part", b"reporting_country,per", None, read=False)
    put("top_level", "suelto.csv", csv_bytes(HEADER, january), None, read=False)
    link("symlink_passwd", "PAN/passwd.csv", "/etc/passwd")
    link("symlink_other_country_file", "MEX/de_panama.csv", "../PAN/darien_2024_02.csv")
    return manifest


# --------------------------------------------------------------------------- observing a data directory


@dataclass
class Outcome:
    marts: list[tuple]
    receipts: dict[str, list[str]]   # "country/file name" -> statuses of its receipts
    refused: list[str]

    def verdicts(self) -> dict[str, str]:
        return {key: statuses[0] for key, statuses in self.receipts.items() if statuses}


def observe(paths: Paths) -> Outcome:
    marts: list[tuple] = []
    if paths.published.exists():
        marts = [tuple(str(v) for v in row) for row in fuzz._query(paths.published, MARTS_SQL)]
    receipts: dict[str, list[str]] = defaultdict(list)
    for path in sorted(paths.outbox.rglob("*.json")) if paths.outbox.exists() else []:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if path.with_suffix(".txt").exists():
                receipts[f"{data['reporting_country']}/{data['file_name']}"].append(data["status"])
    refused = sorted(row[0] for row in fuzz._query(paths.warehouse, "select path from raw.refused_files")) \
        if paths.warehouse.exists() else []
    return Outcome(marts, dict(receipts), refused)


def processes_of(*markers: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose environment holds one of the markers."""
    found = []
    needles = [m.encode() for m in markers]
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            pid = int(environ.parent.name)
            if pid == os.getpid():
                continue
            if any(n in environ.read_bytes() for n in needles):
                cmdline = (environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append((pid, cmdline.strip()[:200]))
        except (OSError, ValueError):
            continue
    return found


def wait_for_no_processes(markers: list[str], grace: float = ORPHAN_GRACE_SECONDS) -> tuple[list, float]:
    """Processes still there after `grace` seconds (then SIGKILLed by pid), and how long the rest took."""
    started = time.monotonic()
    left = processes_of(*markers)
    while left and time.monotonic() - started < grace:
        time.sleep(0.2)
        left = processes_of(*markers)
    waited = time.monotonic() - started
    for pid, _ in left:  # a process of this trial: ours to end
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left, waited


# --------------------------------------------------------------------------- running commands


@dataclass
class Run:
    command: str
    returncode: int | None
    seconds: float
    killed_by_us: bool = False
    stderr_tail: str = ""


def trial_env(paths: Paths, prefect_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFECT_API_URL", "PREFECT_PROFILE", "HMO_KILL_AFTER", "PREFECT_PROFILES_PATH", KILL_AT)}
    env.update(CHILD_ENV)
    env.update(HMO_DATA_DIR=str(paths.root), PREFECT_HOME=str(prefect_home), **extra)
    return env


# A kill inside a stage, where HMO_KILL_AFTER cannot reach: "<module>:<function>:<n>" SIGKILLs
# the process as the n-th call of that function returns (e.g. "ingest.submissions:receive:3":
# three files received, the fourth not yet). Armed by this harness in the child, not by the product.
KILL_AT = "HMO_BENCH_KILL_AT"


def arm_kill_at() -> None:
    spec = os.environ.get(KILL_AT)
    if not spec:
        return
    import functools
    import importlib

    module_name, function_name, count = spec.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, function_name)  # renamed in the product: this trial says so loudly
    calls = {"n": 0}

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == int(count):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, function_name, wrapper)


# `stages` is flows.stages.run with every stage and no Prefect (what the tests call).
_STAGES_CODE = "from flows import stages; from hmo.settings import Paths; " \
               "import sys; sys.exit(1 if stages.run(Paths.from_env()).failure else 0)"
_ARMED_CLI = "import sys; from bench.kill import arm_kill_at; arm_kill_at(); from flows import cli; " \
             "sys.exit(cli.main(sys.argv[1:]))"


def _argv(command: str, armed: bool = False) -> list[str]:
    if command == "stages":
        return ["-c", ("from bench.kill import arm_kill_at; arm_kill_at(); " if armed else "") + _STAGES_CODE]
    return ["-c", _ARMED_CLI, command] if armed else ["-m", "flows.cli", command]


class Subprocesses:
    """Each command a fresh `python -m flows.cli <command>`: imports and all, as an operator runs it."""

    name = "subprocess"

    def start(self, command: str, env: dict[str, str], log: Path) -> Any:
        output = log.open("ab")
        process = subprocess.Popen([sys.executable, *_argv(command, KILL_AT in env)], cwd=PROJECT_ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
        output.close()
        return process

    def wait(self, process: Any, timeout: float | None) -> int | None:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def pid(self, process: Any) -> int:
        return process.pid

    def close(self) -> None:
        pass


def _forked(command: str, env: dict[str, str], log: str) -> None:
    """A forkserver child: the command's environment, output to the log, then the command."""
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.chdir(PROJECT_ROOT)
    # multiprocessing's resource tracker is shared with the forkserver's parent; a child killed
    # with dbt's locks registered would have the parent warn of "leaked semaphores" at its exit.
    from multiprocessing import resource_tracker

    own = resource_tracker.ResourceTracker()
    resource_tracker._resource_tracker = own
    for name in ("ensure_running", "register", "unregister", "getfd"):
        setattr(resource_tracker, name, getattr(own, name))
    arm_kill_at()
    if command == "stages":
        from flows import stages

        code = 1 if stages.run(Paths.from_env()).failure else 0
    else:
        from flows import cli

        code = cli.main([command])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Forkserver:
    """Each command a child forked from a server that has imported dbt, Great Expectations and the
    stages once (multiprocessing's forkserver): the same code path as `python -m flows.cli` but
    ~10 s cheaper a process, for make test. Prefect is imported by the child, after its
    environment is set, so each `hmo run` gets its own PREFECT_HOME and server."""

    name = "fork"
    PRELOAD = ["flows.cli", "flows.stages", "dbt.cli.main", "dbt.adapters.duckdb", "great_expectations",
               "expectations.validate", "harmonise.audit"]

    def __init__(self) -> None:
        import multiprocessing

        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(self.PRELOAD)

    def warm(self) -> None:
        """Start the server (its imports take ~10 s): call it early, in a thread."""
        process = self.context.Process(target=os.getpid)
        process.start()
        process.join()

    def start(self, command: str, env: dict[str, str], log: Path) -> Any:
        process = self.context.Process(target=_forked, args=(command, env, str(log)))
        process.start()
        return process

    def wait(self, process: Any, timeout: float | None) -> int | None:
        process.join(timeout)
        return process.exitcode

    def pid(self, process: Any) -> int:
        return process.pid

    def close(self) -> None:
        pass


def hmo(paths: Paths, prefect_home: Path, command: str, *, kill_after: str | None = None,
        delay: float | None = None, log: Path | None = None, timeout: float = 900.0,
        executor: Any = None, kill_at: str | None = None) -> Run:
    """`python -m flows.cli <command>` (or "stages") in the trial's environment; SIGKILLed after
    `delay` seconds if given."""
    executor = executor or Subprocesses()
    extra = {"HMO_KILL_AFTER": kill_after} if kill_after else {}
    if kill_at:
        extra[KILL_AT] = kill_at
    log = log or paths.root.parent / f"{command}.log"
    with log.open("ab") as output:
        output.write(f"\n== hmo {command} kill_after={kill_after} kill_at={kill_at} delay={delay} "
                     f"({executor.name})\n".encode())
    started = time.monotonic()
    process = executor.start(command, trial_env(paths, prefect_home, **extra), log)
    killed = False
    returncode = None
    if delay is not None:
        returncode = executor.wait(process, delay)
        if returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(executor.pid(process), signal.SIGKILL)
            killed = True
    if returncode is None:
        returncode = executor.wait(process, timeout)
    if returncode is None:  # hung: a finding, and ours to end
        with contextlib.suppress(ProcessLookupError):
            os.kill(executor.pid(process), signal.SIGKILL)
        returncode = executor.wait(process, None)
        with log.open("ab") as output:
            output.write(f"\n== hmo {command} did not end within {timeout} s: killed\n".encode())
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    return Run(command, returncode, time.monotonic() - started, killed, "\n".join(tail))


def in_process(paths: Paths, stages_: tuple[str, ...] | None = None) -> Run:
    from flows import stages

    started = time.monotonic()
    try:
        summary = stages.run(paths, stages=stages_ or stages.STAGES)
        code = 1 if summary.failure else 0
        tail = summary.failure or ""
    except Exception as exc:  # noqa: BLE001 - a finding, reported
        code, tail = 1, f"{type(exc).__name__}: {exc}"
    return Run("in-process", code, time.monotonic() - started, stderr_tail=tail)


# --------------------------------------------------------------------------- a trial


@dataclass
class Trial:
    number: int
    mode: str                 # boundary | inside (kill_at) | random
    command: str              # run | build | ingest
    stage: str | None = None  # for boundary trials
    kill_at: str | None = None  # for inside trials: "<module>:<function>:<n>" (see arm_kill_at)
    delay: float | None = None
    second_kill: float | None = None  # a random kill of the next `hmo run` too
    cold: bool = False        # an empty data directory, no template
    runs: list[Run] = field(default_factory=list)
    killed: bool = False      # the process died by SIGKILL (-9)
    left_after_kill: list = field(default_factory=list)
    orphan_seconds: float = 0.0
    left_after_recovery: list = field(default_factory=list)
    converged: bool = False
    double_answers: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def label(self) -> str:
        where = {"boundary": self.stage, "inside": self.kill_at}.get(self.mode) or f"{self.delay:.2f}s"
        extra = (f" +kill@{self.second_kill:.2f}s" if self.second_kill is not None else "") + \
            (" cold" if self.cold else "")
        return f"#{self.number} {self.mode} hmo {self.command} @{where}{extra}"


@dataclass
class Reference:
    outcome: Outcome
    manifest: Manifest
    seconds: dict[str, float] = field(default_factory=dict)  # command -> uninterrupted duration


def reference(work: Path, seed: int = 0, cli: bool = True, executor: Any = None) -> Reference:
    """The uninterrupted outcome (in this process); with cli, `hmo run|ingest|build` timed too,
    each of which must reach the same outcome."""
    paths = fuzz.fresh_data_dir(work / "reference")
    manifest = write_kill_inputs(paths.inbox, seed)
    run = in_process(paths)
    if run.returncode != 0:
        raise RuntimeError(f"the reference run failed: {run.stderr_tail}")
    ref = Reference(observe(paths), manifest, {"in-process": run.seconds})
    if cli:
        cli_paths = fuzz.fresh_data_dir(work / "reference-cli")
        write_kill_inputs(cli_paths.inbox, seed)
        home = cli_paths.root.parent / "prefect"
        ingest = hmo(cli_paths, home, "ingest", executor=executor)
        build = hmo(cli_paths, home, "build", executor=executor)
        run_paths = fuzz.fresh_data_dir(work / "reference-run")
        write_kill_inputs(run_paths.inbox, seed)
        full = hmo(run_paths, run_paths.root.parent / "prefect", "run", executor=executor)
        ref.seconds.update(ingest=ingest.seconds, build=build.seconds, run=full.seconds)
        for name, done, where in (("ingest+build", build, cli_paths), ("run", full, run_paths)):
            if done.returncode != 0:
                raise RuntimeError(f"the uninterrupted `hmo {name}` failed: {done.stderr_tail}")
            other = observe(where)
            if other.marts != ref.outcome.marts or other.verdicts() != ref.outcome.verdicts():
                raise RuntimeError(f"the uninterrupted `hmo {name}` differs from the in-process reference")
    return ref


def check_converged(paths: Paths, ref: Reference, manifest: Manifest, archive_after_kill: dict[str, str],
                    trial: Trial) -> None:
    got = observe(paths)
    problems = trial.problems
    if got.marts != ref.outcome.marts:
        missing = [r for r in ref.outcome.marts if r not in got.marts]
        extra = [r for r in got.marts if r not in ref.outcome.marts]
        problems.append(f"marts differ from the reference: {len(missing)} rows missing, {len(extra)} extra "
                        f"(e.g. missing {missing[:1]}, extra {extra[:1]})")
    for item in manifest.items:
        key = f"{item.country}/{item.name}"
        if item.read:
            statuses = got.receipts.get(key, [])
            wanted = ref.outcome.verdicts().get(key)
            if not statuses:
                problems.append(f"no receipt for {key!r} (reference: {wanted})")
            elif any(s != wanted for s in statuses):
                problems.append(f"receipts for {key!r} say {statuses}, the reference {wanted}")
            if len(statuses) > 1:
                trial.double_answers += 1
            if os.path.lexists(manifest.inbox / item.path):
                problems.append(f"{key!r} is still in the inbox")
            archived = list((paths.archive / item.country).glob(f"{item.sha256}*")) \
                if (paths.archive / item.country).exists() else []
            if not any(p.is_file() and fuzz._sha_file(p) == item.sha256 for p in archived
                       if not p.name.endswith(".partial")):
                problems.append(f"{key!r} is not archived byte-identical")
        else:
            if not fuzz._covered(item.path, set(got.refused)):
                problems.append(f"{item.path!r} is not in raw.refused_files")
            if not os.path.lexists(manifest.inbox / item.path):
                problems.append(f"refused {item.path!r} is gone from the inbox")
            elif item.entry == "file" and fuzz._sha_file(manifest.inbox / item.path) != item.sha256:
                problems.append(f"refused {item.path!r} changed")
            elif item.entry == "link" and os.readlink(manifest.inbox / item.path) != item.target:
                problems.append(f"refused link {item.path!r} now points elsewhere")
    unexpected = set(got.receipts) - {f"{i.country}/{i.name}" for i in manifest.items if i.read}
    if unexpected:
        problems.append(f"receipts for no file: {sorted(unexpected)}")
    after = fuzz.tree(paths.archive)
    gone = [p for p, digest in archive_after_kill.items() if not p.endswith(".partial") and after.get(p) != digest]
    if gone:
        problems.append(f"archived files gone or changed by the recovery: {gone[:3]}")
    left = [p for p in after if p.endswith(".partial")]
    if left:
        problems.append(f"partial archive copies left after the recovery: {left[:3]}")
    half_receipts = [p.name for p in paths.outbox.rglob("*.partial")] if paths.outbox.exists() else []
    if half_receipts:
        problems.append(f"partial receipts left after the recovery: {half_receipts[:3]}")
    trial.converged = not problems


def run_trial(trial: Trial, ref: Reference, work: Path, seed: int = 0, recover: str = "run",
              keep: bool = False, executor: Any = None) -> Trial:
    """One trial; `recover` is the next run: "run" (`hmo run`), "stages" (flows.stages.run in a
    process of the executor) or "inprocess" (in this process)."""
    started = time.monotonic()
    target = work / f"trial-{trial.number:03d}"
    shutil.rmtree(target, ignore_errors=True)
    if trial.cold:
        paths = Paths(target / "data")
        paths.ensure()
    else:
        paths = fuzz.fresh_data_dir(target)
    home = target / "prefect"
    markers = [f"PREFECT_HOME={home}", f"HMO_DATA_DIR={paths.root}"]
    manifest = write_kill_inputs(paths.inbox, seed)
    if trial.command == "build":  # what `hmo build` works on: an inbox already received
        trial.runs.append(hmo(paths, home, "ingest", executor=executor))
    killed = hmo(paths, home, trial.command, kill_after=trial.stage, delay=trial.delay, executor=executor,
                 kill_at=trial.kill_at)
    trial.runs.append(killed)
    trial.killed = killed.returncode == -signal.SIGKILL
    if trial.mode in ("boundary", "inside") and not trial.killed:
        trial.problems.append(f"{trial.stage or trial.kill_at} did not kill `hmo {trial.command}` "
                              f"(status {killed.returncode}: {killed.stderr_tail})")
    if trial.mode == "random" and not trial.killed and killed.returncode != 0:
        trial.problems.append(f"`hmo {trial.command}` failed on its own (status {killed.returncode}): "
                              f"{killed.stderr_tail}")
    trial.left_after_kill, trial.orphan_seconds = wait_for_no_processes(markers)
    if trial.left_after_kill:
        trial.problems.append(f"left behind {ORPHAN_GRACE_SECONDS:.0f} s after the kill: {trial.left_after_kill}")
    if trial.second_kill is not None:
        again = hmo(paths, home, "run", delay=trial.second_kill, executor=executor)
        trial.runs.append(again)
        left, _ = wait_for_no_processes(markers)
        if left:
            trial.problems.append(f"left behind after the second kill: {left}")
    archive_after_kill = fuzz.tree(paths.archive)
    recovery = in_process(paths) if recover == "inprocess" else hmo(paths, home, recover, executor=executor)
    trial.runs.append(recovery)
    if recovery.returncode != 0:
        trial.problems.append(f"the next run failed (status {recovery.returncode}): {recovery.stderr_tail}")
    trial.left_after_recovery, _ = wait_for_no_processes(markers, grace=10.0)
    if trial.left_after_recovery:
        trial.problems.append(f"left behind after the next run: {trial.left_after_recovery}")
    check_converged(paths, ref, manifest, archive_after_kill, trial)
    trial.seconds = time.monotonic() - started
    if trial.converged and not trial.problems and not keep:
        shutil.rmtree(target, ignore_errors=True)
    return trial


def plan(trials: int, seed: int, ref: Reference) -> list[Trial]:
    """Every boundary of `hmo run` and of `hmo ingest`/`hmo build` first, then random kills."""
    rng = random.Random(seed)
    planned: list[Trial] = []
    for stage in BOUNDARIES:
        planned.append(Trial(len(planned), "boundary", "run", stage=stage))
    for stage in BOUNDARIES:
        planned.append(Trial(len(planned), "boundary", "ingest" if stage == "ingest" else "build", stage=stage))
    for files in INSIDE_INGEST:
        planned.append(Trial(len(planned), "inside", "ingest", kill_at=f"ingest.submissions:receive:{files}"))
    while len(planned) < trials:
        command = rng.choices(["run", "build", "ingest"], [6, 2, 1])[0]
        cold = command == "run" and rng.random() < 0.08
        span = ref.seconds.get(command, 30.0) * (3.0 if cold else 1.0)
        trial = Trial(len(planned), "random", command, delay=round(rng.uniform(0.05, span), 2), cold=cold)
        if rng.random() < 0.2:
            trial.second_kill = round(rng.uniform(0.5, ref.seconds.get("run", 30.0)), 2)
        planned.append(trial)
    return planned[:trials]


def summarise(done: list[Trial], ref: Reference) -> dict[str, Any]:
    return {
        "trials": len(done),
        "killed": sum(t.killed for t in done),
        "finished_before_the_kill": sum(not t.killed for t in done if t.mode == "random"),
        "converged": sum(t.converged for t in done),
        "failed": sum(not t.converged for t in done),
        "double_answers": sum(t.double_answers for t in done),
        "left_behind_after_kill": sum(bool(t.left_after_kill) for t in done),
        "left_behind_after_recovery": sum(bool(t.left_after_recovery) for t in done),
        "orphan_seconds_max": round(max((t.orphan_seconds for t in done), default=0.0), 2),
        "by_mode": dict(Counter(f"{t.mode} {t.command}" for t in done)),
        "reference_seconds": {k: round(v, 2) for k, v in ref.seconds.items()},
        "reference_rows": len(ref.outcome.marts),
        "reference_verdicts": dict(Counter(ref.outcome.verdicts().values())),
        "problems": dict(Counter(p.split(":")[0][:120] for t in done for p in t.problems).most_common()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--recover", choices=["run", "stages", "inprocess"], default="run",
                        help="the next run: `hmo run` (default), flows.stages.run in a new process, or in this one")
    parser.add_argument("--executor", choices=["subprocess", "fork"], default="subprocess",
                        help="fresh `python -m flows.cli` processes (default), or children of a forkserver")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep every trial's directory")
    parser.add_argument("--modes", default="boundary,inside,random",
                        help="which planned trials to run (comma-separated; default all)")
    parser.add_argument("--out", type=Path, default=OUT / "kill.json")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="hmo-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    executor = Forkserver() if args.executor == "fork" else Subprocesses()
    ref = reference(work, args.seed, executor=executor)
    print(f"reference: {len(ref.outcome.marts)} rows, {ref.outcome.verdicts()}, seconds {ref.seconds}", flush=True)
    done: list[Trial] = []
    modes = set(args.modes.split(","))
    for trial in [t for t in plan(args.trials, args.seed, ref) if t.mode in modes]:
        run_trial(trial, ref, work, args.seed, recover=args.recover, keep=args.keep, executor=executor)
        done.append(trial)
        status = "ok" if trial.converged and not trial.problems else "FAILED"
        print(f"{trial.label()}: {status} killed={trial.killed} runs="
              f"{[(r.command, r.returncode, round(r.seconds, 1)) for r in trial.runs]} "
              f"orphans {trial.orphan_seconds:.1f}s", flush=True)
        for problem in trial.problems:
            print(f"    {problem[:400]}", flush=True)
        report = {**summarise(done, ref), "wall_seconds": round(time.monotonic() - started, 1), "work": str(work),
                  "details": [asdict(t) for t in done]}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "details"}, indent=1))
    print(f"written: {args.out}")
    return 0 if all(t.converged and not t.problems for t in done) else 1


if __name__ == "__main__":
    sys.exit(main())
