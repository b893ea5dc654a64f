"""`hmo export`: one table of the published marts as Parquet or CSV, filtered, with labels in a language;
fct_flows also as SDMX-CSV with its structure (flows/sdmx.py); beside every export of flows, their
reference metadata in English and Spanish (flows/metadata.py).

It reads the published copy through the same locked-down connection as `hmo
sql` (flows/query.py: no file access from SQL), fetches Arrow batches and
writes them with pyarrow, so memory stays at a batch however large the table.
The file is written as `<name>.partial` and renamed when complete: an export
that fails or is stopped leaves no file that looks whole.

CSV is for spreadsheets: text cells that start like a formula get a leading
apostrophe (hmo/spreadsheets.py says why), computed in DuckDB as the rows are
read. Numbers and dates are never changed; Parquet keeps every value as it is.

`--lang es|en` puts, after each coded column, its label from the matching
dimension (`flow_type` → `flow_type_label`, from `dim_flow_type`).
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from flows import metadata, sdmx
from flows.query import open_published, published_time
from hmo.errors import HmoError
from hmo.settings import Paths
from hmo.spreadsheets import defused_sql

FORMATS = ("parquet", "csv", "sdmx-csv")
EXTENSIONS = {"parquet": "parquet", "csv": "csv", "sdmx-csv": "csv"}
LANGUAGES = ("es", "en")
SCHEMA = "marts"  # the dimensions, whose labels --lang adds
# The public's tables (publication.pub_*, confidential counts suppressed) and the analysts' marts
SCHEMAS = ("publication", "marts")
BATCH_ROWS = 100_000
# A coded column, the dimension that names its codes, that dimension's key column and label column.
LABELS = {
    "reporting_country": ("dim_country", "country_code", "name_{lang}"),
    "counterpart_country": ("dim_country", "country_code", "name_{lang}"),
    "nationality": ("dim_nationality", "nationality_code", "label_{lang}"),
    "flow_type": ("dim_flow_type", "code", "label_{lang}"),
    "sex": ("dim_sex", "code", "label_{lang}"),
    "age": ("dim_age", "code", "label_{lang}"),
    "route": ("dim_route", "code", "label_{lang}"),
    "origin_scope": ("dim_origin_scope", "code", "label_{lang}"),
    "country_role": ("dim_country_role", "code", "label_{lang}"),
    "obs_status": ("dim_obs_status", "code", "label_{lang}"),
}
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class ExportRefused(HmoError):
    """An export that cannot be made as asked."""


@dataclass(frozen=True)
class Exported:
    path: Path
    table: str
    rows: int
    published_at: datetime
    metadata: Path | None = None  # the reference metadata written beside the data


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _months(period: str) -> tuple[str, str]:
    """`YYYY-MM` or `YYYY-MM:YYYY-MM` as the first days of its first and last months."""
    first, _, last = period.partition(":")
    last = last or first
    for month in (first, last):
        if not _MONTH.match(month):
            raise ExportRefused(f"--period: {period!r} is not YYYY-MM or YYYY-MM:YYYY-MM")
    if last < first:
        raise ExportRefused(f"--period: {period!r} ends before it starts")
    return f"{first}-01", f"{last}-01"


def default_output(table: str, fmt: str, period: str | None, country: str | None) -> Path:
    parts = [table, *(part for part in (country, period.replace(":", "_") if period else None) if part)]
    return Path.cwd() / f"{'-'.join(parts)}{'-sdmx' if fmt == 'sdmx-csv' else ''}.{EXTENSIONS[fmt]}"


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def open_spark_tables(paths: Paths) -> tuple[duckdb.DuckDBPyConnection, datetime]:
    """The tables the Spark target built (`<data>/spark/warehouse/<schema>.db/<table>/`, Parquet in hive
    folders), as views of an in-memory DuckDB, and when Spark last wrote them. Read them while no Spark
    build runs: Spark's insert_overwrite replaces a table's partitions one by one."""
    folders = sorted(folder for folder in paths.spark_tables.glob("*.db/*")
                     if folder.is_dir() and _IDENTIFIER.match(folder.name)
                     and _IDENTIFIER.match(folder.parent.name.removesuffix(".db")) and next(folder.rglob("*.parquet"), None))
    if not folders:
        raise ExportRefused(f"Spark has built no table in {paths.spark_tables}: run `hmo build --target spark` first")
    con = duckdb.connect()
    for folder in folders:
        schema = folder.parent.name.removesuffix(".db")
        location = folder.as_posix().replace("'", "''")
        con.execute(f"create schema if not exists {schema}")
        con.execute(f"create view {schema}.{folder.name} as select * from read_parquet("
                    f"'{location}/**/*.parquet', hive_partitioning = true)")
    written = max(path.stat().st_mtime for folder in folders for path in folder.rglob("*.parquet"))
    return con, datetime.fromtimestamp(written, timezone.utc)


def export(paths: Paths, table: str, fmt: str, output: Path | None = None, period: str | None = None,
           country: str | None = None, lang: str | None = None, force: bool = False,
           engine: str = "duckdb") -> Exported:
    """`engine` spark: the tables the Spark target built, in place of the published copy."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt not in FORMATS:
        raise ExportRefused(f"--format: one of {', '.join(FORMATS)}")
    if lang is not None and lang not in LANGUAGES:
        raise ExportRefused(f"--lang: one of {', '.join(LANGUAGES)}")
    if engine == "spark":
        con, published_at = open_spark_tables(paths)
    else:
        published_at = published_time(paths)
        con = open_published(paths)
    try:
        found = con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in (?, ?) "
            "order by table_schema <> 'publication', table_name", list(SCHEMAS)).fetchall()
        schema, name = _resolve(table, found)
        tables = [n for s, n in found if s == SCHEMA]
        columns = con.execute(
            "select column_name, data_type from information_schema.columns where table_schema = ? "
            "and table_name = ? order by ordinal_position", [schema, name]).fetchall()
        names = [column for column, _ in columns]
        if fmt == "sdmx-csv" and name not in sdmx.TABLES:
            raise ExportRefused(f"--format sdmx-csv: only {' and '.join(sdmx.TABLES)} have an SDMX structure "
                                f"({sdmx.AGENCY}:{sdmx.DSD_ID})")
        where, params = _filters(names, period, country)
        target = Path(output) if output is not None else default_output(name, fmt, period, country)
        written = [target, sdmx.structure_path(target)] if fmt == "sdmx-csv" else [target]
        with_metadata = metadata.applies(names) and metadata.TABLE in tables
        if with_metadata:
            written.append(metadata.metadata_path(target))
        for path in written:
            if path.exists() and not force:
                raise ExportRefused(f"{path} exists: give another --output, or --force to replace it")
        partials = [path.with_name(path.name + ".partial") for path in written]
        rows = 0
        try:
            if fmt == "sdmx-csv":
                rows = sdmx.write(con, f"select * from {schema}.{_quoted(name)}{where}", params, partials[0],
                                  partials[1], lang or "en")
            else:
                reader = con.execute(_select(schema, name, columns, tables, fmt, lang, where), params) \
                    .fetch_record_batch(BATCH_ROWS)
                writer = pq.ParquetWriter(partials[0], reader.schema) if fmt == "parquet" \
                    else pacsv.CSVWriter(partials[0], reader.schema)
                with writer:
                    for batch in reader:
                        writer.write_batch(batch)
                        rows += batch.num_rows
            if with_metadata and not metadata.write(con, f"select * from {schema}.{_quoted(name)}{where}", params,
                                                    partials[-1]):
                with_metadata = False  # nothing exported, nothing to describe: an earlier one (--force) goes
                written, partials = written[:-1], partials[:-1]
                metadata.metadata_path(target).unlink(missing_ok=True)
            for partial, path in zip(partials, written):
                os.replace(partial, path)
        except OSError as exc:
            raise ExportRefused(f"cannot write {target}: {exc.strerror or exc}") from None
        finally:
            for partial in partials:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
    finally:
        con.close()
    return Exported(target, f"{schema}.{name}", rows, published_at, written[-1] if with_metadata else None)


def _resolve(table: str, found: list[tuple[str, str]]) -> tuple[str, str]:
    """`pub_flows`, `publication.pub_flows`, `fct_flows`, `marts.fct_flows`: its schema and name."""
    schema, _, name = table.rpartition(".")
    for candidate_schema, candidate in found:
        if candidate == name and schema in ("", candidate_schema):
            return candidate_schema, candidate
    raise ExportRefused(f"no table {table!r} among the published tables; one of: "
                        f"{', '.join(f'{s}.{n}' for s, n in found)}")


def _filters(columns: list[str], period: str | None, country: str | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if period is not None:
        if "period" not in columns:
            raise ExportRefused("--period: this table has no period column")
        clauses.append("period between ?::date and ?::date")
        params += list(_months(period))
    if country is not None:
        if "reporting_country" not in columns:
            raise ExportRefused("--country: this table has no reporting_country column")
        code = country.strip().upper()
        if len(code) != 3 or not code.isalpha():
            raise ExportRefused(f"--country: {country!r} is not an ISO 3166 alpha-3 code")
        clauses.append("reporting_country = ?")
        params.append(code)
    return (" where " + " and ".join(clauses)) if clauses else "", params


def _select(schema: str, table: str, columns: list[tuple[str, str]], tables: list[str], fmt: str,
            lang: str | None, where: str) -> str:
    picked, joins, text = [], [], []
    for i, (column, kind) in enumerate(columns):
        picked.append(f"t.{_quoted(column)}")
        text.append(kind == "VARCHAR")
        label = LABELS.get(column) if lang is not None and column != "code" else None
        if label is not None and label[0] in tables and label[0] != table:
            dimension, key, label_column = label
            alias = f"d{i}"
            joins.append(f"left join {SCHEMA}.{_quoted(dimension)} {alias} "
                         f"on {alias}.{_quoted(key)} = t.{_quoted(column)}")
            picked.append(f"{alias}.{_quoted(label_column.format(lang=lang))} as {_quoted(column + '_label')}")
            text.append(True)
    inner = f"select {', '.join(picked)} from (select * from {schema}.{_quoted(table)}{where}) t {' '.join(joins)}"
    if fmt != "csv":
        return inner
    # Every text column, labels included, defused for spreadsheets; the rest as it is.
    outer = []
    for expression, is_text in zip(picked, text):
        alias = expression.rsplit(" as ", 1)[1] if " as " in expression else expression.split(".", 1)[1]
        outer.append(f"{defused_sql(alias)} as {alias}" if is_text else alias)
    return f"select {', '.join(outer)} from ({inner})"
