"""`hmo check`: the verdict a file would get, without receiving it.

The file goes through the pipeline's own ingest and validation
(`flows.stages.ingest`, `flows.stages.validate`) in a scratch data directory
that is thrown away, so the real warehouse, archive and outbox are never
touched; only the data directory's alias files are read.

What validation reads besides the file (the seeds, and the views dbt builds
before validation, `harmonise.dbt.BEFORE_VALIDATION`) depends only on the dbt
project and the raw layer's DDL. It is built once per version of the two into
a template warehouse, `<data>/work/check-template-<key>.duckdb`, and each check
starts from a copy of it. The copy records the project fingerprint it was
built with, so `DbtProject.prepare_validation` finds it current and runs no
dbt: a check then costs Python, Great Expectations and the file's own SQL.
Without a template (the first check after a change) one is built, which costs
a dbt parse and build once.

`check` is a plain function: the long-running service (`hmo serve`,
flows/service.py) calls `warm_up` once (GX imported, template ready) and then
`check` per file, one at a time.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from expectations.receipts import receipt_data, render_text
from flows import stages
from harmonise import dbt
from ingest import aliases
from hmo.errors import HmoError
from ingest.profiles import load_profiles
from hmo.settings import Paths
from hmo.warehouse import RAW_DDL, connect

# "off": no template, dbt builds the seeds and views in each scratch warehouse
# (the path before templates; the benchmark's baseline, and a way out should a
# template ever be suspected).
TEMPLATE_SWITCH = "HMO_CHECK_TEMPLATE"
TEMPLATE_PREFIX = "check-template-"
ABANDONED_BUILD_SECONDS = 3600  # a build takes seconds; a folder this old lost its process
# The real submission gets its id when it arrives; a check must not suggest one.
DRY_RUN_SUBMISSION = "— (prueba / dry run)"
DRY_RUN_NOTE = ("Prueba (hmo check): no se recibió ni cargó nada; el envío real tendrá su propio número. / "
                "Dry run (hmo check): nothing was received or loaded; the real submission gets its own number.")
PREVIEW_SQL = """
    select source_row, reporting_country_value as reporting_country, period_value as period,
           flow_type, border_point, counterpart_country, sex, age, nationality_value,
           nationality, count, obs_status
    from marts.fct_submitted_observations order by source_row limit ?
"""


@dataclass
class CheckResult:
    profile: str
    preview_columns: list[str]
    preview: list[tuple]
    verdict: str                      # accepted | rejected, before the audit build
    receipt: str                      # the receipt's text, marked as a dry run
    problems: list[dict] = field(default_factory=list)  # as in the receipt's JSON
    template: Path | None = None      # the template the check started from, if any

    def as_json(self) -> dict:
        """The result as plain JSON values (what `hmo serve` answers): a preview cell that is
        not a JSON scalar becomes its `str()`, which is what the preview table prints anyway."""
        return {
            "profile": self.profile,
            "preview_columns": list(self.preview_columns),
            "preview": [[_json_cell(value) for value in row] for row in self.preview],
            "verdict": self.verdict,
            "receipt": self.receipt,
            "problems": json.loads(json.dumps(self.problems, ensure_ascii=False, default=str)),
        }


def _json_cell(value: object) -> object:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)  # dates, decimals, NaN and infinities (not JSON), anything else


def template_path(paths: Paths, fingerprint: str) -> Path:
    """Named by the dbt project and the raw layer's DDL: the views read raw tables,
    and a template of another schema would not even open (SchemaMismatch)."""
    key = hashlib.sha256(f"{fingerprint}\n{RAW_DDL}".encode()).hexdigest()
    return paths.work / f"{TEMPLATE_PREFIX}{key}.duckdb"


def templates_enabled() -> bool:
    return os.environ.get(TEMPLATE_SWITCH, "").strip().lower() not in ("off", "0", "false", "no")


def template_missing(paths: Paths) -> bool:
    """Whether the next check builds a template first (and so takes seconds more)."""
    return templates_enabled() and not template_path(paths, dbt.project_fingerprint()).exists()


def _settle(warehouse: Path) -> str:
    """Checkpoint the built warehouse (the file alone is the template, no write-ahead
    log beside it) and return the project fingerprint its build recorded."""
    con = connect(warehouse)
    try:
        con.execute("checkpoint")
        row = con.execute("select fingerprint from main.hmo_build_state where step = 'validation'").fetchone()
    finally:
        con.close()
    if row is None:
        raise HmoError(f"the check template built in {warehouse.parent} records no validation build")
    return row[0]


def prepare_template(paths: Paths) -> Path:
    """The template for the dbt project as it is now; built (one dbt parse and build) if absent.

    Built in a private folder beside its final place and renamed into it, so a
    concurrent check sees either no template or a whole one; two checks that
    build at once build equivalent ones, and the last rename wins.
    """
    current = template_path(paths, dbt.project_fingerprint())
    if current.exists():
        return current
    paths.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{TEMPLATE_PREFIX}", dir=paths.work) as folder:
        build = Paths(Path(folder))
        connect(build.warehouse).close()  # the raw layer the views read
        dbt.DbtProject(build).prepare_validation(force=True)
        # Named by what was built, not by what was asked: a seed edited during
        # the build would otherwise give a template a name it does not match.
        built = template_path(paths, _settle(build.warehouse))
        os.replace(build.warehouse, built)
    _forget_other_templates(paths, keep=built)
    return built


def _forget_other_templates(paths: Paths, keep: Path) -> None:
    # Older ones only: a concurrent check may just have built a newer one. A
    # check still copying a removed file keeps reading it (POSIX unlink).
    for folder in paths.work.glob(f".{TEMPLATE_PREFIX}*"):
        if time.time() - folder.stat().st_mtime > ABANDONED_BUILD_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)  # a build whose process was killed
    for other in paths.work.glob(f"{TEMPLATE_PREFIX}*.duckdb"):
        try:
            if other != keep and other.stat().st_mtime <= keep.stat().st_mtime:
                other.unlink()
        except FileNotFoundError:
            pass


def preload() -> None:
    """Import Great Expectations (~3 s), which validation needs and nothing before it."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations  # noqa: F401


def warm_up(paths: Paths) -> Path | None:
    """What a long-running service does once, so that each `check` pays only for its file."""
    preload()
    return prepare_template(paths) if templates_enabled() else None


def _scratch_warehouse(paths: Paths, scratch: Paths) -> Path | None:
    """Start the scratch warehouse from the template; None when dbt builds it instead."""
    if not templates_enabled():
        return None
    try:
        template = prepare_template(paths)
    except OSError:
        # A data directory this user cannot write: dbt builds the scratch
        # warehouse instead, slower and with the same verdict.
        return None
    shutil.copyfile(template, scratch.warehouse)
    return template


def _share_aliases(paths: Paths, scratch: Paths) -> None:
    # A real run resolves names through the data directory's alias files too
    # (`hmo aliases add`); a check without them would reject what the run accepts.
    if paths.aliases.is_dir():
        shutil.copytree(paths.aliases, scratch.aliases, dirs_exist_ok=True)


def _ingest(scratch: Paths, file: Path, country: str) -> int:
    """The pipeline's own ingest of the file in the scratch inbox: what it refuses, the check refuses."""
    copy = scratch.inbox / country / file.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, copy)
    summary = stages.ingest(scratch)
    if summary.received:
        return summary.received[0].submission_id
    if summary.refused:
        raise HmoError(f"{file}: {summary.refused[0].reason}")
    if summary.failed:
        raise HmoError(f"{file}: {summary.failed[0][1]}")
    raise HmoError(f"{file}: the inbox did not find it")


def _freeze_resolved(scratch: Paths) -> None:
    """Turn the view of submitted rows into a table of the same name and rows.

    Validation, the preview and the receipt would each resolve every name of
    the file again (~0.3 s per 10,000 rows). In a scratch warehouse holding one
    received file, what the view reads no longer changes: raw rows, seeds and
    the alias files, loaded here first as `stages.validate` loads them (it loads
    them again, to the same rows). Done while Great Expectations imports on the
    other thread.
    """
    con = connect(scratch.warehouse)
    try:
        aliases.load(con, scratch)
        con.execute("begin transaction")
        con.execute("create table marts.fct_submitted_observations__frozen as "
                    "select * from marts.fct_submitted_observations")
        con.execute("drop view marts.fct_submitted_observations")
        con.execute("alter table marts.fct_submitted_observations__frozen rename to fct_submitted_observations")
        con.execute("commit")
    finally:
        con.close()


def dry_run_receipt(data: dict) -> str:
    """The receipt's text, with no submission id and saying it is a dry run."""
    lines = render_text({**data, "submission_id": DRY_RUN_SUBMISSION}).splitlines()
    lines.insert(1, DRY_RUN_NOTE)
    return "\n".join(lines) + "\n"


def check(paths: Paths, file: Path, country: str, preview_rows: int = 10) -> CheckResult:
    """Dry run of `file` as sent by `country`. `paths` is the real data directory:
    only its alias files and check template are read (the template written when absent)."""
    # A broken profile is the answer, before seconds go into a template (ProfileError).
    load_profiles()
    # GX is needed only once the file is in; importing it meanwhile overlaps
    # its ~3 s with the template copy and the load (DuckDB releases the GIL).
    importer = threading.Thread(target=preload, daemon=True)
    importer.start()
    with tempfile.TemporaryDirectory(prefix="hmo-check-") as folder:
        scratch = Paths(Path(folder))
        scratch.ensure()
        template = _scratch_warehouse(paths, scratch)
        _share_aliases(paths, scratch)
        submission_id = _ingest(scratch, file, country)
        if template is not None:  # without one, dbt builds the view inside validate
            _freeze_resolved(scratch)
        importer.join()
        verdicts = stages.validate(scratch, dbt.DbtProject(scratch))
        verdict = verdicts[0] if verdicts else None
        con = connect(scratch.warehouse)
        try:
            registered = con.execute("select coalesce(profile, 'standard') from raw.submissions").fetchone()
            assert registered is not None  # _ingest returned its id
            profile = registered[0]
            cursor = con.execute(PREVIEW_SQL, [preview_rows])
            columns = [d[0] for d in cursor.description]
            preview = cursor.fetchall()
            data = receipt_data(con, submission_id)
        finally:
            con.close()
    return CheckResult(profile, columns, preview, verdict.status if verdict else "rejected",
                       dry_run_receipt(data), data.get("problems") or [], template)
