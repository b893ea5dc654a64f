"""One read-only SQL statement on the published copy of the warehouse (`hmo sql`, `hmo status`).

Readers open the copy `hmo.warehouse.publish` swaps in after each run, never
the warehouse itself, so a query cannot block the pipeline nor be blocked by it.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

import duckdb

from hmo.errors import HmoError
from hmo.settings import Paths
from hmo.warehouse import memory_limit

TIMEOUT = 60.0
TEMP_LIMIT = "4GB"


class QueryRefused(HmoError):
    """A query the Observatory will not run, or stopped."""


@dataclass(frozen=True)
class Answer:
    columns: list[str]
    rows: list[tuple]
    published_at: datetime


def run(paths: Paths, sql: str, params: Sequence[object] = (), timeout: float = TIMEOUT) -> Answer:
    if timeout <= 0:
        raise QueryRefused("--timeout must be more than 0 seconds")
    try:
        # Taken before opening: if a new copy lands in between, the time shown is
        # at worst older than the data, never newer.
        published_at = datetime.fromtimestamp(paths.published.stat().st_mtime).astimezone()
    except FileNotFoundError:
        raise QueryRefused("nothing is published yet: run `hmo run` first") from None
    con = open_published(paths)
    try:
        statements = con.extract_statements(sql)
        if not statements:
            raise QueryRefused("no SQL given")
        if len(statements) > 1:
            raise QueryRefused(f"give one statement at a time (this query has {len(statements)})")
        timer = threading.Timer(timeout, con.interrupt)
        timer.daemon = True  # never keeps `hmo` alive after a Ctrl-C
        try:
            timer.start()
            cursor = con.execute(statements[0], list(params))
            columns = [d[0] for d in cursor.description] if cursor.description else []
            rows = cursor.fetchall() if columns else []
        except duckdb.InterruptException:
            raise QueryRefused(
                f"the query ran longer than {timeout:g} s and was stopped (raise --timeout to allow more)"
            ) from None
        finally:
            timer.cancel()
            timer.join()  # so it cannot interrupt a connection being closed
        return Answer(columns, rows, published_at)
    finally:
        # A query a Ctrl-C left running between DuckDB's calls would hold close() till it ends.
        con.interrupt()
        con.close()


def open_published(paths: Paths) -> duckdb.DuckDBPyConnection:
    """The published copy, read-only and locked down: no file, extension or setting reachable from SQL."""
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        con.execute(f"set memory_limit = '{memory_limit()}'")
        con.execute(f"set threads = {min(4, os.cpu_count() or 1)}")
        # A query may spill past memory_limit, but not fill the disk the archive lives on.
        con.execute(f"set max_temp_directory_size = '{TEMP_LIMIT}'")
        # Marts are nameable without their schema (once a build has made them).
        present = {row[0] for row in con.execute("select schema_name from information_schema.schemata").fetchall()}
        con.execute(f"set search_path = '{','.join(s for s in ('marts', 'main', 'raw') if s in present)}'")
        # A read-only file still lets a query COPY TO, read_csv or ATTACH any path,
        # load extensions and raise its own limits: shut all of that, for good.
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con
