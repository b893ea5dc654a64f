"""The pipeline's stages as plain functions; the Prefect flow and the CLI call these."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from expectations.receipts import write_receipt
from expectations.validate import Verdict, validate_pending
from harmonise.dbt import DbtProject
from ingest.settings import PROJECT_ROOT, Paths
from ingest.submissions import IngestSummary, ingest_inbox
from ingest.warehouse import connect
from report.html import write_report

SAMPLES = PROJECT_ROOT / "data" / "samples"


@dataclass
class RunSummary:
    ingested: IngestSummary = field(default_factory=IngestSummary)
    verdicts: list[Verdict] = field(default_factory=list)
    receipts: list[Path] = field(default_factory=list)
    report: Path | None = None

    def lines(self) -> list[str]:
        out = []
        for verdict in self.verdicts:
            rules = f" ({', '.join(verdict.rules_failed)})" if verdict.rules_failed else ""
            out.append(f"{verdict.status:9} {verdict.country}/{verdict.file_name} "
                       f"[submission {verdict.submission_id}]{rules}")
        for received in self.ingested.received:
            if received.duplicate_of:
                out.append(f"duplicate {received.country}/{received.file_name} "
                           f"[same bytes as submission {received.duplicate_of}]")
        for item, error in self.ingested.failed:
            out.append(f"NOT READ  {item.country}/{item.path.name}: {error} (left in the inbox)")
        for path in self.ingested.misplaced:
            out.append(f"NOT READ  {path}: not in a country folder inbox/<ISO3>/ (left in place)")
        if not out:
            out.append("no new files in the inbox")
        if self.receipts:
            out.append(f"receipts: {self.receipts[0].parent.parent}")
        if self.report:
            out.append(f"report: {self.report}")
        return out


def preload() -> None:
    """Import dbt and Great Expectations (~4-5 s) while something else waits, e.g. a server starting."""
    import dbt.cli.main  # noqa: F401
    import great_expectations  # noqa: F401


def ingest(paths: Paths) -> IngestSummary:
    con = connect(paths.warehouse)
    try:
        return ingest_inbox(con, paths)
    finally:
        con.close()


def validate(paths: Paths, dbt: DbtProject) -> list[Verdict]:
    dbt.prepare_validation()
    con = connect(paths.warehouse)
    try:
        return validate_pending(con)
    finally:
        con.close()


def answer(paths: Paths, ingested: IngestSummary, verdicts: list[Verdict]) -> list[Path]:
    con = connect(paths.warehouse)
    try:
        receipts = [write_receipt(con, paths, v.submission_id) for v in verdicts]
        receipts += [
            write_receipt(con, paths, r.submission_id, duplicate_file=r.file_name)
            for r in ingested.received if r.duplicate_of
        ]
        return receipts
    finally:
        con.close()


def build(paths: Paths, dbt: DbtProject, full_refresh: bool = False) -> None:
    dbt.build_marts(full_refresh=full_refresh)


def report(paths: Paths) -> Path:
    con = connect(paths.warehouse)
    try:
        return write_report(con, paths.reports / "quality_report.html")
    finally:
        con.close()


@dataclass
class CheckResult:
    profile: str
    preview_columns: list[str]
    preview: list[tuple]
    verdict: str
    receipt: str


def check(file: Path, country: str, preview_rows: int = 10) -> CheckResult:
    """Dry run: the file goes through ingest and validation in a scratch warehouse
    that is thrown away, so the real one is not touched and nothing is archived."""
    import tempfile

    from ingest.submissions import InboxFile, receive

    with tempfile.TemporaryDirectory(prefix="hmo-check-") as scratch:
        paths = Paths(Path(scratch))
        paths.ensure()
        copy = paths.inbox / country / file.name
        copy.parent.mkdir(parents=True)
        shutil.copyfile(file, copy)
        con = connect(paths.warehouse)
        try:
            received = receive(con, paths, InboxFile(country, copy))
        finally:
            con.close()
        [verdict] = validate(paths, DbtProject(paths)) or [None]
        con = connect(paths.warehouse)
        try:
            profile = con.execute("select coalesce(profile, 'standard') from raw.submissions").fetchone()[0]
            cursor = con.execute(
                """
                select source_row, reporting_country_value as reporting_country, period_value as period,
                       flow_type, border_point, counterpart_country, sex, age, nationality_value,
                       nationality, count, obs_status
                from intermediate.int_observations__resolved order by source_row limit ?
                """,
                [preview_rows],
            )
            columns = [d[0] for d in cursor.description]
            preview = cursor.fetchall()
            receipt = write_receipt(con, paths, received.submission_id).read_text(encoding="utf-8")
        finally:
            con.close()
    return CheckResult(profile, columns, preview, verdict.status if verdict else "rejected", receipt)


def copy_samples(paths: Paths) -> list[Path]:
    copied = []
    for source in sorted(SAMPLES.glob("*/*")):
        target = paths.inbox / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
    return copied
