"""One read-only SQL statement on the published copy of the warehouse (`hmo sql`, `hmo status`).

Readers open the copy `hmo.warehouse.publish` swaps in after each run, never
the warehouse itself, so a query cannot block the pipeline nor be blocked by it.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Sequence

import duckdb

from hmo.errors import HmoError
from hmo.settings import Paths
from hmo.warehouse import open_published as open_published_copy

TIMEOUT = 60.0


class QueryRefused(HmoError):
    """A query the Observatory will not run, or stopped."""


@dataclass(frozen=True)
class Answer:
    columns: list[str]
    rows: list[tuple]
    published_at: datetime


# `marts.fct_flows` by name: with --as-of only the unqualified name is the earlier figures.
_QUALIFIED_FLOWS = re.compile(r'\bmarts"?\s*\.\s*"?fct_flows\b', re.IGNORECASE)


def as_of_moment(text: str) -> datetime:
    """When `--as-of` means: a date is the end of that day (UTC), so it holds everything decided on it;
    a time (ISO 8601, UTC unless it says its offset) is that moment."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        pass
    else:
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryRefused(f"--as-of: {text!r} is not a date (YYYY-MM-DD) or a time (YYYY-MM-DD HH:MM[:SS])") \
            from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run(paths: Paths, sql: str, params: Sequence[object] = (), timeout: float = TIMEOUT,
        as_of: datetime | None = None) -> Answer:
    """`as_of`: `fct_flows` is the figures as they stood just before that moment (main.flows_as_of)."""
    if timeout <= 0:
        raise QueryRefused("--timeout must be more than 0 seconds")
    published_at = published_time(paths)
    con = open_published(paths)
    try:
        statements = con.extract_statements(sql)
        if not statements:
            raise QueryRefused("no SQL given")
        if len(statements) > 1:
            raise QueryRefused(f"give one statement at a time (this query has {len(statements)})")
        if as_of is not None:
            _flows_as_of(con, sql, as_of)
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


def _flows_as_of(con: duckdb.DuckDBPyConnection, sql: str, as_of: datetime) -> None:
    if _QUALIFIED_FLOWS.search(sql):
        raise QueryRefused("with --as-of, write fct_flows without `marts.`: that name is the earlier figures")
    moment = as_of.astimezone(timezone.utc).isoformat()  # a datetime's own text: no quote can be in it
    try:
        # Shadows marts.fct_flows for this connection's unqualified name (temporary objects come first).
        con.execute(f"create temp view fct_flows as select * from main.flows_as_of(timestamptz '{moment}')")
    except duckdb.CatalogException:
        raise QueryRefused("this published copy keeps no history yet: run `hmo run` once, then ask again") \
            from None


def published_time(paths: Paths) -> datetime:
    """When the published copy was swapped in; QueryRefused if nothing is published yet.

    Read before opening the copy: if a new one lands in between, the time shown is
    at worst older than the data, never newer."""
    try:
        return datetime.fromtimestamp(paths.published.stat().st_mtime).astimezone()
    except FileNotFoundError:
        raise QueryRefused("nothing is published yet: run `hmo run` first") from None


def open_published(paths: Paths) -> duckdb.DuckDBPyConnection:
    """The published copy, read-only and locked down (hmo.warehouse.open_published)."""
    return open_published_copy(paths.published)
