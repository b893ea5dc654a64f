"""The fuzz run: hostile inboxes through the real stages, every file accounted for.

`python -m bench.fuzz --files 10000` writes the files in batches (default
1,000: one `flows.stages.run` per batch, so dbt and Great Expectations start
once per batch), each batch into its own data directory copied from a
template warehouse that has been built once (seeds, views and marts of an
empty run), checks every batch as `check_batch` says, prints the counts and
writes them to bench/out/fuzz.json.

`check_batch` is what tests/flows/test_fuzz.py asserts too (issue #9):

- no traceback: `stages.run` returned; its summary reports no file it failed
  to read, no receipt it failed to write and no build failure;
- every item answered exactly once: a receipt (.txt beside its .json) for each
  regular file that was read, one per submission or duplicate, or a row in
  raw.refused_files (its path or a folder above it) for what is not read;
  nothing both, nothing neither, no receipt or refusal nobody explains;
- nothing lost: each file read is archived byte-identical under
  archive/<ISO3>/<sha256>*, gone from the inbox; each refused item is still in
  place, unchanged (bytes, link target, kind); nothing of the archive as it
  was before the run is gone; files outside the inbox that links point at are
  unchanged; no `.partial` is left behind;
- the verdict the standard decides (the manifest's `expect`) is the receipt's,
  so the valid control files in the batch are accepted;
- nothing of a rejected file in the published copy: marts.fct_flows has no
  row of a rejected submission, no null in a required column, and a null
  count only with obs_status Q.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import faulthandler
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.hostile import KINDS, Item, Manifest, Scale, write_hostile
from hmo.settings import PROJECT_ROOT, Paths

OUT = PROJECT_ROOT / "bench" / "out"
# fct_flows columns that are never null (dbt's not_null tests, standard §2).
REQUIRED_MART_COLUMNS = ["reporting_country", "period", "flow_type", "border_point", "counterpart_country", "sex",
                         "age", "nationality", "route", "origin_scope", "country_role", "obs_status", "submission_id"]
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


# --------------------------------------------------------------------------- template


_TEMPLATE: Path | None = None


def template() -> Paths:
    """A data directory after one run on an empty inbox, built once per process.

    Copies of it start warm (seeds loaded, marts built, dbt's partial parse in
    work/dbt-target), so a test's run pays only for its files.
    """
    global _TEMPLATE
    if _TEMPLATE is None or not (_TEMPLATE / "data" / "warehouse.duckdb").exists():
        from flows import stages

        root = Path(tempfile.mkdtemp(prefix="hmo-template-"))
        atexit.register(shutil.rmtree, root, True)
        paths = Paths(root / "data")
        paths.ensure()
        summary = stages.run(paths)
        if summary.failure:
            raise RuntimeError(f"the template run failed: {summary.failure}")
        _TEMPLATE = root
    return Paths(_TEMPLATE / "data")


def fresh_data_dir(target: Path) -> Paths:
    """A copy of the template as `target`/data (target is created if needed)."""
    source = template().root
    destination = target / "data"
    shutil.copytree(source, destination, symlinks=True)
    return Paths(destination)


# --------------------------------------------------------------------------- snapshots


def _sha_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every regular file under folder (links not followed)."""
    found: dict[str, str] = {}
    if not folder.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found[path.relative_to(folder).as_posix()] = _sha_file(path)
    return found


@dataclass
class Snapshot:
    archive: dict[str, str]
    outbox: set[str]

    @classmethod
    def of(cls, paths: Paths) -> "Snapshot":
        outbox = {p.relative_to(paths.outbox).as_posix() for p in paths.outbox.rglob("*")} \
            if paths.outbox.exists() else set()
        return cls(tree(paths.archive), outbox)


# --------------------------------------------------------------------------- checks


# Which of issue #9's promises a failure breaks.
CHECKS = ("run", "answered", "lost", "verdict", "published")


@dataclass
class Failure:
    kind: str      # the item's kind, or "run" / "published" / "archive" for the batch
    path: str      # repr() of the item's path (names hold newlines and worse)
    what: str
    detail: str = ""
    check: str = "run"  # one of CHECKS

    def line(self) -> str:
        return f"{self.check}: [{self.kind}] {self.path}: {self.what}" + (f" — {self.detail}" if self.detail else "")


@dataclass
class BatchResult:
    files: int = 0
    seconds: float = 0.0
    kinds: Counter = field(default_factory=Counter)
    answered: int = 0          # items with a receipt
    refused: int = 0           # items with a refusal row
    verdicts: Counter = field(default_factory=Counter)   # accepted / rejected / duplicate
    by_kind: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[Failure] = field(default_factory=list)
    traceback: str | None = None
    summary_lines: list[str] = field(default_factory=list)
    # Observations that break no promise of issue #9 but are worth a look (not failures).
    info: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files, "seconds": round(self.seconds, 2), "kinds": dict(self.kinds),
            "answered": self.answered, "refused": self.refused, "verdicts": dict(self.verdicts),
            "by_kind": {k: dict(v) for k, v in sorted(self.by_kind.items())},
            "failures": [asdict(f) for f in self.failures], "traceback": self.traceback, "info": dict(self.info),
        }


def _name_variants(text: str) -> set[str]:
    """How a name that is not UTF-8 may come out of the warehouse or a receipt."""
    raw = os.fsencode(text)
    return {text, raw.decode("utf-8", "replace"), raw.decode("utf-8", "backslashreplace"), raw.decode("latin-1")}


def _receipts(paths: Paths, before: Snapshot) -> tuple[list[dict], list[str]]:
    """New receipts (their JSON, with the stem) and what is wrong with the outbox."""
    problems: list[str] = []
    found: list[dict] = []
    if not paths.outbox.exists():
        return found, problems
    for folder in sorted(paths.outbox.iterdir()):
        names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        for name in sorted(names):
            if f"{folder.name}/{name}" in before.outbox:
                continue
            if name.endswith(".partial"):
                problems.append(f"a partial receipt is left: {folder.name}/{name!r}")
            elif name.endswith(".json"):
                stem = name[: -len(".json")]
                if f"{stem}.txt" not in names:
                    problems.append(f"a receipt has its .json but no .txt: {folder.name}/{stem!r}")
                try:
                    data = json.loads((folder / name).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    problems.append(f"an unreadable receipt {folder.name}/{name!r}: {exc}")
                    continue
                data["_stem"] = f"{folder.name}/{stem}"
                found.append(data)
            elif name.endswith(".txt") and f"{name[:-4]}.json" not in names:
                problems.append(f"a receipt has its .txt but no .json: {folder.name}/{name!r}")
    return found, problems


def _query(database: Path, sql: str, params: list | None = None) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _covered(path: str, refusals: set[str]) -> str | None:
    """The refusal row that answers path: the path itself or a folder above it."""
    if path in refusals:
        return path
    parts = path.split("/")
    for depth in range(len(parts) - 1, 0, -1):
        ancestor = "/".join(parts[:depth])
        if ancestor in refusals:
            return ancestor
    return None


def _entry_kind(mode: int) -> str:
    # Written apart from ingest.submissions._kind on purpose: the oracle must not share the code it checks.
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def check_batch(paths: Paths, manifest: Manifest, summary: Any, error: BaseException | None,
                before: Snapshot, result: BatchResult | None = None) -> BatchResult:
    """Every check of the module docstring on one run over `manifest`'s inbox."""
    result = result or BatchResult()
    result.files = len(manifest.items)
    result.kinds = manifest.kinds()
    fail = result.failures

    def failure(item: Item | None, what: str, detail: str = "", check: str = "run") -> None:
        fail.append(Failure(item.kind if item else "run", repr(item.path) if item else "-", what, detail, check))

    if error is not None:
        result.traceback = "".join(traceback.format_exception(error))
        failure(None, "stages.run raised", "".join(traceback.format_exception_only(error)).strip())
    if summary is not None:
        with contextlib.suppress(Exception):
            result.summary_lines = summary.lines()
        for item, why in getattr(summary.ingested, "failed", []):
            fail.append(Failure("run", repr(str(item.path)), "ingest could not read a file (left unanswered)", why))
        for what, why in getattr(summary.answers, "failed", []):
            fail.append(Failure("run", repr(what), "no receipt could be written", why))
        if summary.failure:
            failure(None, "the build was not published", summary.failure)

    # --- the warehouse's view
    submissions: dict[int, tuple[str, str, str]] = {}
    refusals: dict[str, str] = {}
    if paths.warehouse.exists():
        try:
            submissions = {row[0]: row[1:] for row in _query(
                paths.warehouse, "select submission_id, reporting_country, file_name, status from marts.fct_submissions")}
            refusals = dict(_query(paths.warehouse, "select path, reason from raw.refused_files"))
        except Exception as exc:  # noqa: BLE001 - a locked or broken warehouse is a finding
            failure(None, "the warehouse cannot be read after the run", repr(exc))
    refusal_paths = set(refusals)

    receipts, problems = _receipts(paths, before)
    for problem in problems:
        failure(None, problem, check="answered")
    by_key: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for data in receipts:
        by_key[(data.get("reporting_country"), data.get("file_name"))].append(data)
    used_receipts: set[int] = set()
    used_refusals: set[str] = set()

    for item in manifest.items:
        keys = [(item.country, name) for name in _name_variants(item.name)] if item.country else []
        mine = [r for key in keys for r in by_key.get(key, [])]
        covering = None
        for variant in _name_variants(item.path):
            covering = covering or _covered(variant, refusal_paths)
        for r in mine:
            used_receipts.add(id(r))
        if covering:
            used_refusals.add(covering)
        answered, refused = bool(mine), covering is not None
        result.answered += answered
        result.refused += refused
        for r in mine:
            result.verdicts[r.get("status")] += 1
            result.by_kind[item.kind][r.get("status")] += 1
        if refused:
            result.by_kind[item.kind]["refused"] += 1
        if answered and refused:
            failure(item, "answered twice: a receipt and a refusal", f"refusal {covering!r}: {refusals[covering]}",
                    "answered")
        if not answered and not refused:
            failure(item, "not answered: no receipt and no refusal", check="answered")
        if len(mine) > 1:
            failure(item, f"{len(mine)} receipts for one file", ", ".join(r["_stem"] for r in mine), "answered")
        if item.read is True and refused and not answered:
            failure(item, "refused, but it is a regular file in a member country's folder",
                    refusals[covering], "answered")
        if item.read is False and answered:
            failure(item, "read, but it must be left alone", ", ".join(r["_stem"] for r in mine), "answered")
        if item.expect and mine and any(r.get("status") != item.expect for r in mine):
            failure(item, f"verdict {[r.get('status') for r in mine]}, the standard says {item.expect}",
                    "; ".join(f"{p.get('rule')} row {p.get('row')} {p.get('column')}={p.get('value')!r}"
                              for r in mine for p in (r.get("problems") or [])[:3]) or item.note, "verdict")
        for r in mine:  # the warehouse and the receipt agree
            sid = r.get("submission_id")
            if r.get("status") != "duplicate" and sid in submissions and submissions[sid][2] != r.get("status"):
                failure(item, f"receipt says {r.get('status')}, marts.fct_submissions says {submissions[sid][2]}",
                        check="verdict")

        # --- nothing lost
        location = manifest.inbox / item.path
        if item.entry == "file" and item.read is not False and item.sha256 and item.country:
            gone = not os.path.lexists(location)
            if answered and not gone:
                failure(item, "answered but still in the inbox (the next run reads it again)", check="answered")
            if gone or answered:  # out of the inbox: its bytes must be in the archive
                archived = [p for p in (paths.archive / item.country).glob(f"{item.sha256}*")
                            if not p.name.endswith(".partial") or item.name.lower().endswith(".partial")] \
                    if (paths.archive / item.country).exists() else []
                if not archived:
                    failure(item, "its bytes are not in the archive", f"archive/{item.country}/{item.sha256}*", "lost")
                elif not any(_sha_file(p) == item.sha256 for p in archived):
                    failure(item, "the archived copy differs from the file", str(archived[0]), "lost")
        if refused or item.read is False:
            try:
                info = os.lstat(location)
            except FileNotFoundError:
                failure(item, "refused but gone from the inbox", check="lost")
                continue
            kind = _entry_kind(info.st_mode)
            expected_kind = {"socket": "socket"}.get(item.entry, item.entry)
            if kind != expected_kind:
                failure(item, f"refused but changed: it is a {kind} now, it was a {item.entry}", check="lost")
            elif kind == "file" and item.sha256 and _sha_file(location) != item.sha256:
                failure(item, "refused but its bytes changed", check="lost")
            elif kind == "link" and item.target is not None and os.readlink(location) != item.target:
                failure(item, "refused but the link now points elsewhere", os.readlink(location), "lost")

    for data in receipts:
        if id(data) not in used_receipts:
            fail.append(Failure("run", repr(data["_stem"]), "a receipt for no file of the batch",
                                f"{data.get('status')} {data.get('file_name')!r}", "answered"))
    item_paths = {variant for item in manifest.items for variant in _name_variants(item.path)}
    for path in sorted(refusal_paths - used_refusals):
        if not any(p == path or p.startswith(path + "/") for p in item_paths):
            fail.append(Failure("run", repr(path), "a refusal for nothing the batch holds",
                                    refusals[path], "answered"))

    # --- the archive: nothing removed, nothing half-written
    after = tree(paths.archive)
    for relative, digest in before.archive.items():
        if after.get(relative) != digest:
            fail.append(Failure("archive", repr(relative), "an archived file is gone or changed", check="lost"))
    # A file named *.partial is archived as <sha256>.partial: that one is no leftover.
    named_partial = {f"{i.country}/{i.sha256}.partial" for i in manifest.items
                     if i.country and i.sha256 and i.name.lower().endswith(".partial")}
    for relative, digest in after.items():
        complete = relative in named_partial and relative.split("/")[-1].startswith(digest)
        if relative.endswith(".partial") and not complete:
            fail.append(Failure("archive", repr(relative), "a partial archive copy is left", check="lost"))
    for outside, digest in manifest.outside.items():
        path = Path(outside)
        if digest and (not path.is_file() or _sha_file(path) != digest):
            fail.append(Failure("outside", repr(outside), "a file outside the inbox changed or is gone",
                                check="lost"))

    # --- the published copy
    rejected = {sid for sid, (_, _, status) in submissions.items() if status == "rejected"}
    rejected |= {r["submission_id"] for r in receipts if r.get("status") == "rejected"}
    if not paths.published.exists():
        failure(None, "no published copy", check="published")
    else:
        try:
            published = {row[0] for row in _query(
                paths.published, "select distinct submission_id from marts.fct_flows")}
            leaked = sorted(published & rejected)
            if leaked:
                failure(None, "rows of rejected submissions are published",
                        ", ".join(f"{sid} {submissions.get(sid, ('?', '?'))[:2]}" for sid in leaked[:10]),
                        "published")
            nulls = " + ".join(f"count(*) filter (where {c} is null)" for c in REQUIRED_MART_COLUMNS)
            [(null_cells, bad_counts)] = _query(
                paths.published,
                f"select {nulls}, count(*) filter (where count is null and obs_status is distinct from 'Q') "
                "from marts.fct_flows")
            if null_cells:
                failure(None, f"{null_cells} nulls in required columns of the published marts.fct_flows",
                        check="published")
            if bad_counts:
                failure(None, f"{bad_counts} published rows have no count and obs_status is not Q",
                        check="published")
            if rejected:  # the published copy is the whole warehouse: its raw layer holds rejected rows
                ids = ", ".join(str(int(i)) for i in rejected)
                [(raw_rows,)] = _query(paths.published,
                                       f"select count(*) from raw.observations where submission_id in ({ids})")
                result.info["rejected rows in the published raw.observations"] += raw_rows
            [(small,)] = _query(paths.published, "select count(*) from marts.fct_flows where count between 1 and 4")
            result.info["published fct_flows counts of 1 to 4 (standard section 7)"] += small
        except Exception as exc:  # noqa: BLE001
            failure(None, "the published copy cannot be read", repr(exc), "published")
    return result


# --------------------------------------------------------------------------- running a batch


class _Watchdog:
    """During a run: a pipe someone opens blocking is given a writer (so the run sees an end
    of file rather than hanging), and a run longer than `timeout` dumps every thread's stack."""

    def __init__(self, manifest: Manifest, timeout: float) -> None:
        self.pipes = [manifest.inbox / item.path for item in manifest.items if item.entry == "fifo"]
        self.timeout = timeout
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._unblock, daemon=True)

    def _unblock(self) -> None:
        while not self.stop.wait(1.0):
            for pipe in self.pipes:
                with contextlib.suppress(OSError):
                    os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))

    def __enter__(self) -> "_Watchdog":
        faulthandler.dump_traceback_later(self.timeout, exit=False)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        faulthandler.cancel_dump_traceback_later()
        self.stop.set()
        self.thread.join()


def run_batch(paths: Paths, manifest: Manifest, timeout: float = 900.0) -> BatchResult:
    """One `stages.run` over the inbox `manifest` describes, then `check_batch`."""
    from flows import stages

    before = Snapshot.of(paths)
    summary, error = None, None
    started = time.monotonic()
    with _Watchdog(manifest, timeout):
        try:
            summary = stages.run(paths)
        except Exception as exc:  # noqa: BLE001 - every exception is a finding
            error = exc
    result = BatchResult(seconds=time.monotonic() - started)
    return check_batch(paths, manifest, summary, error, before, result)


def rerun_is_quiet(paths: Paths, manifest: Manifest) -> list[Failure]:
    """A second run over what the first left (the refused items) answers nothing again."""
    from flows import stages

    before = Snapshot.of(paths)
    failures: list[Failure] = []
    try:
        with _Watchdog(manifest, 600):
            summary = stages.run(paths)
    except Exception as exc:  # noqa: BLE001
        return [Failure("run", "-", "the second run raised", "".join(traceback.format_exception_only(exc)).strip())]
    receipts, problems = _receipts(paths, before)
    failures += [Failure("run", "-", f"second run: {p}") for p in problems]
    for data in receipts:
        failures.append(Failure("run", repr(data["_stem"]), "second run wrote a receipt again",
                                f"{data.get('status')} {data.get('file_name')!r}"))
    if summary.ingested.received:
        failures.append(Failure("run", "-", "second run received files again",
                                ", ".join(repr(r.file_name) for r in summary.ingested.received[:5])))
    if summary.failure:
        failures.append(Failure("run", "-", "second run was not published", summary.failure))
    return failures


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="items in all (default 10000)")
    parser.add_argument("--batch", type=int, default=1_000, help="items per run (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="the heavy kinds at make-test sizes")
    parser.add_argument("--work", type=Path, default=None, help="where batches go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep each batch's data directory")
    parser.add_argument("--exclude", action="append", default=[], metavar="KIND",
                        help="leave a kind out (to see past a failure that stops the whole run)")
    parser.add_argument("--only", action="append", default=[], metavar="KIND", help="write only these kinds")
    parser.add_argument("--out", type=Path, default=OUT / "fuzz.json")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="hmo-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    scale = Scale.small() if args.small else Scale()
    started = time.monotonic()
    print(f"template: {template().root}", flush=True)
    totals = BatchResult()
    batches = []
    left, number = args.files, 0
    while left > 0:
        size = min(args.batch, left)
        seed = args.seed * 1_000_003 + number
        target = work / f"batch-{number:03d}"
        paths = fresh_data_dir(target)
        kinds = [k for k in (args.only or KINDS) if k not in args.exclude]
        manifest = write_hostile(paths.inbox, size, seed, scale=scale, outside=target / "outside", kinds=kinds)
        result = run_batch(paths, manifest)
        batches.append({"batch": number, "seed": seed, **result.as_dict()})
        totals.files += result.files
        totals.seconds += result.seconds
        totals.kinds.update(result.kinds)
        totals.answered += result.answered
        totals.refused += result.refused
        totals.verdicts.update(result.verdicts)
        for kind, counts in result.by_kind.items():
            totals.by_kind[kind].update(counts)
        totals.failures += result.failures
        totals.info.update(result.info)
        print(f"batch {number}: {result.files} items in {result.seconds:.1f} s, answered {result.answered}, "
              f"refused {result.refused}, {dict(result.verdicts)}, {len(result.failures)} failures", flush=True)
        for failure in result.failures[:20]:
            print(f"  {failure.line()}", flush=True)
        if result.traceback:
            print(result.traceback, flush=True)
        if not result.failures and not args.keep:
            shutil.rmtree(target, ignore_errors=True)
        else:
            (target / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        left -= size
        number += 1

    report = {
        "files": totals.files, "batches": number, "excluded": args.exclude, "only": args.only, "batch_size": args.batch, "seed": args.seed,
        "scale": asdict(scale), "run_seconds": round(totals.seconds, 1),
        "wall_seconds": round(time.monotonic() - started, 1),
        "kinds": dict(sorted(totals.kinds.items())), "answered": totals.answered, "refused": totals.refused,
        "verdicts": dict(totals.verdicts),
        "by_kind": {k: dict(v) for k, v in sorted(totals.by_kind.items())},
        "info": dict(totals.info), "failures": len(totals.failures),
        "failures_by_what": dict(Counter(f"[{f.kind}] {f.what}" for f in totals.failures).most_common()),
        "work": str(work), "batch_results": batches,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "batch_results"}, indent=1))
    print(f"written: {args.out}")
    return 1 if totals.failures else 0


if __name__ == "__main__":
    sys.exit(main())
