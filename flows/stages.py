"""The pipeline's stages as plain functions, and `run`, the one place that orders them.

The Prefect flow, the CLI and the benchmark all call `run`; Prefect wraps each
stage as a task through `call`.
"""
from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable

from expectations.receipts import Answers, answer_due
from expectations.suites import data_docs_index
from expectations.validate import Verdict, validate_pending
from harmonise.audit import AuditOutcome, audit
from harmonise.dbt import BuildFailed, DbtProject
from ingest import aliases, raw_lake
from hmo import lake
from hmo.errors import ConfigurationError, HmoError
from hmo.settings import PROJECT_ROOT, Paths
from ingest.submissions import IngestSummary, ingest_inbox
from hmo.warehouse import connect, publish as publish_warehouse
from report import mail
from report.figures import NoReportableMonth
from report.monthly import Written, write_monthly
from report.texts import LANGUAGES

SAMPLES = PROJECT_ROOT / "data" / "samples"

# Verdicts are final only after the audit; the receipts follow the publication,
# so that an accepted file's figures are readable when its receipt says so.
STAGES = ("ingest", "validate", "audit", "publish", "receipts", "report")
BUILD_STAGES = ("validate", "audit", "publish", "receipts")


@dataclass
class RunSummary:
    ingested: IngestSummary = field(default_factory=IngestSummary)
    verdicts: list[Verdict] = field(default_factory=list)
    audit: AuditOutcome | None = None
    published: Path | None = None
    answers: Answers = field(default_factory=Answers)
    report: Path | None = None
    failure: str | None = None  # why the marts were not published this time

    @property
    def receipts(self) -> list[Path]:
        return self.answers.written

    def lines(self) -> list[str]:
        out = []
        rejected_by_audit = self.audit.rejected if self.audit else {}
        for verdict in self.verdicts:
            status, rules = verdict.status, list(verdict.rules_failed)
            if verdict.submission_id in rejected_by_audit:
                status, rules = "rejected", sorted({*rules, "A01"})
            shown = f" ({', '.join(rules)})" if rules else ""
            out.append(f"{status:9} {verdict.country}/{verdict.file_name} "
                       f"[submission {verdict.submission_id}]{shown}")
        for received in self.ingested.received:
            if received.duplicate_of:
                out.append(f"duplicate {received.country}/{received.file_name} "
                           f"[same bytes as submission {received.duplicate_of}]")
        for item, error in self.ingested.failed:
            out.append(f"NOT READ  {item.country}/{item.file_name}: {error} (left in the inbox)")
        for refusal in self.ingested.refused:
            out.append(f"NOT READ  inbox/{refusal.shown}: {refusal.reason} (left in place)")
        for what, error in self.answers.failed:
            out.append(f"NO RECEIPT YET {what}: {error} (the next run tries again)")
        if not out:
            out.append("no new files in the inbox")
        if self.receipts:
            out.append(f"receipts: {self.receipts[0].parent.parent}")
        if self.published:
            out.append(f"published: {self.published}")
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
        # Names resolve through the alias files as they are now (`hmo aliases add`).
        aliases.load(con, paths)
        return validate_pending(con)
    finally:
        con.close()


def build_on_spark(paths: Paths, dbt: DbtProject, full_refresh: bool = False) -> Path:
    """The marts on Spark from the Parquet copies, which it first makes whole (what a crash or a full disk
    kept ingest from writing, the aliases and verdicts as they stand). The suites run on DuckDB
    (`hmo build`): Spark builds from the verdicts given, and a submission not yet validated waits.
    Returns the folder of Spark's tables."""
    con = connect(paths.warehouse)
    try:
        raw_lake.write_missing(con, paths)
        # Spark takes a Parquet view's schema from its files, and with no submission there are none.
        if not any((paths.raw_lake / "submissions").glob("submission_id=*")):
            raise NothingReceived(f"no submission has been received in {paths.root} yet: Spark builds from "
                                  "the files `hmo run` (or `hmo ingest`) received")
        raw_lake.write_aliases(con, paths)
        lake.write_validation(con, paths)
    finally:
        con.close()
    dbt.build_all(full_refresh=full_refresh)
    return paths.spark_tables


def publish(paths: Paths) -> Path:
    return publish_warehouse(paths.warehouse, paths.published)


def answer(paths: Paths) -> Answers:
    con = connect(paths.warehouse)
    try:
        return answer_due(con, paths)
    finally:
        con.close()


class NothingReceived(HmoError):
    """A Spark build asked of a warehouse that has received no submission."""


class NothingToReport(HmoError):
    """The report reads the published marts, and no run has published them yet."""


def write_reports(paths: Paths, period: date | None = None, languages: tuple[str, ...] = LANGUAGES,
                  pdf: bool = True) -> list[Written]:
    """The monthly report (report.monthly) of `period`, by default the latest month with accepted data."""
    if not paths.published.exists():
        raise NothingToReport(f"nothing is published in {paths.root} yet: run `hmo run` (or `hmo build`) first")
    return write_monthly(paths, period, languages, pdf, data_docs_index(paths, None))


def report(paths: Paths, pdf: bool = False) -> Path | None:
    """The run's report stage: the latest month's report in HTML; its Spanish page, or None when no month
    has accepted data yet (a run that accepted nothing has nothing to report).

    The PDFs are `hmo report`'s and the monthly schedule's (`pdf`): drawing them costs 1.2 s more, which
    every run (and every test that runs the pipeline) would pay for pages nobody prints.
    """
    try:
        written = write_reports(paths, pdf=pdf)
    except NoReportableMonth:
        return None
    if pdf and mail.configured() is not None:  # the monthly run: the PPT gets it by e-mail too
        mail_reports(written)
    return written[0].html


def mail_reports(written: list[Written]) -> list[str]:
    """Send the written reports' PDFs to the PPT (report.mail); the addresses they went to."""
    settings = mail.configured()
    if settings is None:
        raise ConfigurationError("to mail the report, set HMO_SMTP_HOST and HMO_REPORT_TO (README, report by e-mail)")
    pdfs = [w.pdf for w in written if w.pdf is not None]
    if not pdfs:
        raise ConfigurationError("the report is mailed with its PDFs: write them too (not --no-pdf)")
    mail.send(settings, mail.message(settings, f"{written[0].period:%Y-%m}", pdfs, [w.html for w in written]))
    return settings.recipients


def _direct(stage: str, function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


def _fault_point(stage: str) -> None:
    """The kill test's seam: HMO_KILL_AFTER=<stage> kills this process as a power cut would."""
    if os.environ.get("HMO_KILL_AFTER") == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def run(paths: Paths, dbt: DbtProject | None = None, *, full_refresh: bool = False,
        stages: tuple[str, ...] = STAGES, call: Callable[..., Any] = _direct, report_pdf: bool = False) -> RunSummary:
    """The stages in their order. A build that fails its audit for reasons no
    file explains is not published; files are still answered, and
    `summary.failure` says why."""
    dbt = dbt or DbtProject(paths)
    summary = RunSummary()
    if "ingest" in stages:
        summary.ingested = call("ingest", ingest, paths)
        _fault_point("ingest")
    if "validate" in stages:
        summary.verdicts = call("validate", validate, paths, dbt)
        _fault_point("validate")
    if "audit" in stages:
        try:
            summary.audit = call("audit", audit, paths, dbt, full_refresh)
        except BuildFailed as exc:
            summary.failure = str(exc)
        _fault_point("audit")
    if "publish" in stages and summary.failure is None:
        summary.published = call("publish", publish, paths)
        _fault_point("publish")
    if "receipts" in stages:
        summary.answers = call("receipts", answer, paths)
        _fault_point("receipts")
    if "report" in stages and summary.failure is None:
        summary.report = call("report", report, paths, report_pdf)
    return summary


def copy_samples(paths: Paths) -> list[Path]:
    copied = []
    for source in sorted(SAMPLES.glob("*/*")):
        target = paths.inbox / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
    return copied
