"""Where everything lives: one data directory, from HMO_DATA_DIR (default ./data)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ISO3_MEMBERS: dict[str, str] = {
    **{c: "RCM" for c in "BLZ CAN CRI DOM SLV GTM HND MEX NIC PAN USA".split()},
    **{c: "SACM" for c in "ARG BOL BRA CHL COL ECU GUY PRY PER SUR URY VEN".split()},
}

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def from_env(cls) -> "Paths":
        return cls(Path(os.environ.get("HMO_DATA_DIR", "data")).resolve())

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def work(self) -> Path:
        """Scratch space for decoded copies; safe to delete between runs."""
        return self.root / "work"

    @property
    def warehouse(self) -> Path:
        """Written by one pipeline process at a time; nobody else opens it."""
        return self.root / "warehouse.duckdb"

    @property
    def raw_lake(self) -> Path:
        """The raw layer as Parquet, one partition per submission (ingest/raw_lake.py), for Spark and Trino."""
        return self.root / "raw"

    @property
    def validation_lake(self) -> Path:
        """The validation schema's verdicts and rule failures as Parquet (hmo/lake.py), for Spark and Trino."""
        return self.root / "validation"

    @property
    def spark(self) -> Path:
        """The Spark target's own: its metastore and its tables (dbt_project/profiles.yml)."""
        return self.root / "spark"

    @property
    def spark_tables(self) -> Path:
        """The marts Spark built, as Parquet folders, one per table (`<schema>.db/<table>/`)."""
        return self.spark / "warehouse"

    @property
    def published(self) -> Path:
        """The last audited copy of the warehouse, swapped in whole: what readers open."""
        return self.root / "published" / "warehouse.duckdb"

    @property
    def events(self) -> Path:
        """What changed a figure after arrival, one file per event, oldest first by name."""
        return self.root / "events"

    @property
    def aliases(self) -> Path:
        """National aliases added with `hmo aliases add` (ingest/aliases.py), one CSV per country."""
        return self.root / "aliases"

    @property
    def data_docs(self) -> Path:
        """Great Expectations' Data Docs (sites/<ISO3>/, sites/staff/) and the validation results they show."""
        return self.root / "data_docs"

    @property
    def dbt_docs(self) -> Path:
        """dbt's documentation of every model and column, English and Spanish, one page (`hmo docs`)."""
        return self.root / "dbt_docs" / "index.html"

    @property
    def writer_lock(self) -> Path:
        return self.root / "writer.lock"

    def ensure(self) -> None:
        for folder in (self.inbox, self.archive, self.outbox, self.reports, self.work,
                       self.published.parent, self.events):
            folder.mkdir(parents=True, exist_ok=True)
