"""The measurements of `python -m bench.run`, each a figure with its baseline in the same run."""
from __future__ import annotations


import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bench.harness import (CBP_COUNTRY, CBP_PROFILE, COUNTRY, Harness, Run, Series, StageFailed, TARGETS,
                           copy_warehouse, fresh_dir, human, log, outbox_of, place, ratio)


def cached_generate(data: Path, name: str, rows: int, **options: Any) -> Path:
    """Generate once per set of arguments (the generator is deterministic)."""
    from bench.generate import generate

    path = data / name
    stamp = path.with_suffix(path.suffix + ".args.json")
    args = {"rows": rows, **options}
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == args:
        return path
    log(f"generating {name} ({rows} rows)")
    stamp.unlink(missing_ok=True)
    written = generate(rows, path, **options)
    if written != rows:
        raise StageFailed(f"generator wrote {written} rows for {rows} asked")
    stamp.write_text(json.dumps(args))
    return path


def split_by_country(source: Path, folder: Path) -> dict[str, Path]:
    """One file per reporting country (rule S03: the country must match the inbox folder)."""
    import duckdb

    done = folder / "done.json"
    if done.exists() and json.loads(done.read_text()).get("source") == source.name:
        return {c: folder / f for c, f in json.loads(done.read_text())["files"].items()}
    fresh_dir(folder)
    con = duckdb.connect()
    try:
        con.execute(f"create table t as select * from read_csv('{source}', all_varchar = true)")
        countries = [r[0] for r in con.execute("select distinct reporting_country from t order by 1").fetchall()]
        files = {}
        for country in countries:
            name = f"history_{country}.csv"
            con.execute(
                f"copy (select * from t where reporting_country = '{country}') to '{folder / name}' (header)"
            )
            files[country] = name
    finally:
        con.close()
    done.write_text(json.dumps({"source": source.name, "files": files}))
    return {c: folder / f for c, f in files.items()}


def periods_of(path: Path, country: str) -> set[str]:
    import duckdb

    rows = duckdb.sql(
        f"select distinct period from read_csv('{path}', all_varchar = true) where reporting_country = '{country}'"
    ).fetchall()
    return {r[0] for r in rows}


def free_month(taken: set[str]) -> str:
    """A month no history holds for the country, preferably in the middle of the range."""
    from bench.generate import PERIODS

    today = dt.date.today().strftime("%Y-%m")
    start = PERIODS.index("2012-06")
    for period in PERIODS[start:] + PERIODS[:start]:
        if period not in taken and period < today:
            return period
    raise StageFailed(f"every month already holds {COUNTRY} history")


# --------------------------------------------------------------------------- phases


@dataclass
class SizeResults:
    rows: int
    ingest: Series = field(default_factory=Series)
    ingest_base: Series = field(default_factory=Series)
    validate: Series = field(default_factory=Series)
    validate_base: Series = field(default_factory=Series)
    history_build: Run | None = None
    flow: Series = field(default_factory=Series)
    flow_server: Series = field(default_factory=Series)
    stages: Series = field(default_factory=Series)
    errors: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    ingest_variants: dict[str, Series] = field(default_factory=dict)


def run_ingest_and_validation(h: Harness, res: SizeResults, source: Path, repeat: int, do_validate: bool) -> None:
    n, tag = res.rows, human(res.rows)
    runs, snaps = h.work / "runs", h.work / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    ingested = snaps / f"ingested_{tag}.duckdb"
    ingested.unlink(missing_ok=True)
    for r in range(repeat):
        root = fresh_dir(runs / f"ingest_{tag}")
        place(source, root / "inbox" / COUNTRY / source.name)
        log(f"ingest {tag} #{r + 1}")
        run = h.stage("ingest", f"ingest-{tag}-{r + 1}", root=str(root))
        if run.data["rows"] != n or run.data.get("failed"):
            raise StageFailed(f"ingest {tag}: {run.data['rows']} rows loaded, failed: {run.data.get('failed')}")
        res.ingest.add(run)
        if not ingested.exists():
            shutil.copyfile(root / "warehouse.duckdb", ingested)
        shutil.rmtree(root)

        database = runs / f"baseline_{tag}.duckdb"
        database.unlink(missing_ok=True)
        log(f"ingest baseline {tag} #{r + 1}")
        base = h.stage("ingest_baseline", f"ingest-baseline-{tag}-{r + 1}", database=str(database), csv=str(source))
        if base.data["rows"] != n:
            raise StageFailed(f"baseline {tag}: {base.data['rows']} rows")
        res.ingest_base.add(base)
        database.unlink(missing_ok=True)
    if not do_validate:
        return

    prepared = snaps / f"prepared_{tag}.duckdb"
    prepared.unlink(missing_ok=True)
    for r in range(repeat):
        root = fresh_dir(runs / f"validate_{tag}")
        copy_warehouse(ingested, root)
        log(f"validate {tag} #{r + 1}")
        run = h.stage("validate", f"validate-{tag}-{r + 1}", root=str(root))
        if run.data["statuses"] != {"accepted": 1}:
            res.errors.append(f"validation {tag}: verdicts {run.data['statuses']} (expected one accepted)")
        res.validate.add(run)
        if not prepared.exists():
            # The baseline's input: the same warehouse, with the seeds and views dbt has just
            # built, and the submission pending again (as if the suites had not run).
            reset_to_pending(root / "warehouse.duckdb", prepared)
        shutil.rmtree(root)

        root = fresh_dir(runs / f"validate_baseline_{tag}")
        copy_warehouse(prepared, root)
        log(f"validate baseline {tag} #{r + 1}")
        base = h.stage("validate_baseline", f"validate-baseline-{tag}-{r + 1}", root=str(root))
        if base.data["pending"] != 1 or any(base.data["failing"].values()):
            res.errors.append(f"validation baseline {tag}: pending {base.data['pending']}, "
                              f"failing rows {base.data['failing']}")
        res.validate_base.add(base)
        shutil.rmtree(root)
    ingested.unlink(missing_ok=True)
    prepared.unlink(missing_ok=True)


def reset_to_pending(validated: Path, target: Path) -> None:
    import duckdb

    shutil.copyfile(validated, target)
    con = duckdb.connect(str(target))
    try:
        # The harness, not a stage: it takes the verdicts back so the same rows are pending again.
        con.execute("delete from validation.rule_failures")
        con.execute("delete from validation.verdicts")
    finally:
        con.close()


def build_history(h: Harness, res: SizeResults, files: dict[str, Path]) -> Path:
    tag = human(res.rows)
    snapshot = h.work / "snapshots" / f"history_{tag}.duckdb"
    root = fresh_dir(h.work / "runs" / f"history_{tag}")
    for country, path in files.items():
        place(path, root / "inbox" / country / path.name)
    log(f"history {tag}: running the pipeline once on {len(files)} files (set-up)")
    run = h.stage("pipeline", f"history-{tag}", root=str(root))
    if set(run.data["statuses"]) != {"accepted"} or run.data.get("failed"):
        raise StageFailed(f"history {tag} not accepted whole: {run.data['statuses']} {run.data.get('failed')}")
    res.history_build = run
    shutil.copyfile(root / "warehouse.duckdb", snapshot)
    shutil.rmtree(outbox_of(snapshot), ignore_errors=True)
    shutil.copytree(root / "outbox", outbox_of(snapshot))
    shutil.rmtree(root)
    return snapshot


def run_incremental(h: Harness, res: SizeResults, snapshot: Path, new_file: Path, repeat: int,
                    flow: bool, hmo: list[str], server_url: str | None) -> None:
    tag = human(res.rows)
    for r in range(repeat):
        modes = [("temporary server", {}, res.flow)] if flow else []
        if flow and server_url:
            modes.append(("running server", {"PREFECT_API_URL": server_url}, res.flow_server))
        for mode, extra, series in modes:
            root = fresh_dir(h.work / "runs" / f"incremental_{tag}")
            copy_warehouse(snapshot, root)
            place(new_file, root / "inbox" / COUNTRY / new_file.name)
            log(f"hmo run ({mode}) after {tag} history #{r + 1}")
            label = f"hmo-run-{'server-' if extra else ''}{tag}-{r + 1}"
            run, output = h.command(label, [*hmo, "run"], {"HMO_DATA_DIR": str(root), **extra})
            if f"accepted  {COUNTRY}/{new_file.name}" not in output:
                res.errors.append(f"hmo run ({mode}) {tag}: the new file was not reported accepted")
            series.add(run)
            shutil.rmtree(root)

        root = fresh_dir(h.work / "runs" / f"incremental_stages_{tag}")
        copy_warehouse(snapshot, root)
        place(new_file, root / "inbox" / COUNTRY / new_file.name)
        log(f"stages without Prefect after {tag} history #{r + 1}")
        run = h.stage("pipeline", f"stages-{tag}-{r + 1}", root=str(root))
        if run.data["statuses"] != {"accepted": 1}:
            res.errors.append(f"incremental stages {tag}: verdicts {run.data['statuses']}")
        res.stages.add(run)
        shutil.rmtree(root)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def prefect_server(h: Harness) -> Iterator[str | None]:
    """A Prefect server of our own for the run (own PREFECT_HOME), stopped at the end."""
    script = Path(sys.executable).parent / "prefect"
    if not script.exists():
        yield None
        return
    port = free_port()
    env = {**h.env, "PREFECT_HOME": str(h.work / "prefect_home")}
    log_path = h.logs / "prefect-server.log"
    with log_path.open("wb") as sink:
        process = subprocess.Popen([str(script), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                   env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        import urllib.request

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            log(f"the Prefect server did not start; see {log_path}")
            yield None
            return
        log(f"Prefect server running at {url}")
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the server and the workers it started, by group id
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_ingest_variants(h: Harness, res: SizeResults, source: Path, repeat: int) -> None:
    """The pipeline's load statement rebuilt by hand, one ingredient at a time (bench.measure)."""
    from bench.measure import INGEST_VARIANTS

    tag = human(res.rows)
    for r in range(repeat):
        for variant in INGEST_VARIANTS:
            database = h.work / "runs" / f"variant_{tag}.duckdb"
            database.unlink(missing_ok=True)
            log(f"ingest experiment {variant} {tag} #{r + 1}")
            run = h.stage("ingest_variant", f"variant-{variant}-{tag}-{r + 1}", database=str(database),
                          csv=str(source), variant=variant)
            res.ingest_variants.setdefault(variant, Series()).add(run)
            database.unlink(missing_ok=True)


@dataclass
class CbpResults:
    """Section 4: the real CBP export against a standard-layout file of the same row count."""

    source: Path
    rows: int = 0
    figure: Series = field(default_factory=Series)
    baseline: Series = field(default_factory=Series)
    profile: str = ""
    skipped: str = ""
    errors: list[str] = field(default_factory=list)

    def missed(self) -> bool:
        return bool(self.figure.runs) and not ratio(self.figure.seconds, self.baseline.seconds) < TARGETS["cbp_ratio"]


def count_rows(path: Path) -> int:
    import duckdb

    return duckdb.sql(f"select count(*) from read_csv('{path}', header = true, all_varchar = true)").fetchone()[0]


def measure_cbp(h: Harness, source: Path, data: Path, repeat: int) -> CbpResults:
    """Generate the standard file of the CBP file's row count, then time both (run_cbp)."""
    res = CbpResults(source)
    if not source.exists():
        res.skipped = f"`{source}` is absent"
        log(f"CBP layout skipped: {source} is absent")
        return res
    try:
        res.rows = count_rows(source)
        standard = cached_generate(data, f"{CBP_COUNTRY.lower()}_{human(res.rows)}.csv", res.rows,
                                   country=CBP_COUNTRY)
        run_cbp(h, res, standard, repeat)
    except StageFailed as exc:
        res.errors.append(str(exc))
        log(f"FAILED: {exc}")
    return res


def run_cbp(h: Harness, res: CbpResults, standard: Path, repeat: int) -> None:
    """Each file from inbox to verdict in a fresh data directory, the two alternating."""
    from ingest.profiles import parse_profile

    expected = {"cbp": parse_profile(CBP_PROFILE).name, "standard": "standard"}
    for r in range(repeat):
        for name, source, series in (("cbp", res.source, res.figure), ("standard", standard, res.baseline)):
            root = fresh_dir(h.work / "runs" / f"{name}_layout")
            place(source, root / "inbox" / CBP_COUNTRY / source.name)
            log(f"{name} layout, ingest + validation #{r + 1}")
            run = h.stage("validate", f"{name}-layout-{r + 1}", root=str(root), ingest=True)
            shutil.rmtree(root)
            if run.data["rows"] != res.rows or run.data["failed"]:
                raise StageFailed(f"{name} layout: {run.data['rows']} of {res.rows} rows loaded, "
                                  f"failed: {run.data['failed']}")
            if run.data["profiles"] != [expected[name]]:
                res.errors.append(f"{name} layout: read with {run.data['profiles']}, not [{expected[name]!r}]")
            if run.data["statuses"] != {"accepted": 1}:
                res.errors.append(f"{name} layout: verdicts {run.data['statuses']} (expected one accepted)")
            series.add(run)
    res.profile = expected["cbp"]


# pyinstrument hides library frames; keep Prefect's engine and server start-up, and ours.
PROFILE_SHOW = (r".*(prefect/(flows|flow_engine|tasks|task_engine|context|client/orchestration/__init__|"
                r"server/api/server)|/flows/|/harmonise/|/expectations/|/ingest/|/report/).*")


def profile_missed(h: Harness, res: SizeResults, source: Path, snapshot: Path | None, new_file: Path | None,
                   missed: list[str]) -> None:
    """Run each stage that missed its target once more under pyinstrument."""
    tag = human(res.rows)
    folder = h.work / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    runs = h.work / "runs"
    for what in missed:
        target = folder / f"{what}_{tag}.txt"
        try:
            log(f"profiling {what} {tag}")
            if what == "ingest":
                root = fresh_dir(runs / f"profile_ingest_{tag}")
                place(source, root / "inbox" / COUNTRY / source.name)
                h.stage("ingest", f"profile-ingest-{tag}", root=str(root), profile=str(target))
            elif what == "validation":
                root = fresh_dir(runs / f"profile_validate_{tag}")
                place(source, root / "inbox" / COUNTRY / source.name)
                h.stage("ingest", f"profile-validate-setup-{tag}", root=str(root))
                h.stage("validate", f"profile-validate-{tag}", root=str(root), profile=str(target))
            elif what == "incremental" and snapshot is not None and new_file is not None:
                root = fresh_dir(runs / f"profile_incremental_{tag}")
                copy_warehouse(snapshot, root)
                place(new_file, root / "inbox" / COUNTRY / new_file.name)
                if res.flow.runs:  # `hmo run` itself, temporary Prefect server included
                    h.command(f"profile-hmo-run-{tag}", [
                        sys.executable, "-m", "pyinstrument", "-i", "0.005", "--show-regex", PROFILE_SHOW,
                        "-o", str(target), "-m", "flows.cli", "run"], {"HMO_DATA_DIR": str(root)})
                else:
                    h.stage("pipeline", f"profile-incremental-{tag}", root=str(root), profile=str(target))
            else:
                continue
            shutil.rmtree(root, ignore_errors=True)
            res.profiles[what] = target.read_text()
        except StageFailed as exc:
            res.errors.append(f"profile of {what} {tag} failed: {exc}")


# --------------------------------------------------------------------------- report
