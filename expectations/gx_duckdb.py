"""Great Expectations on the warehouse's own DuckDB connection.

Two problems with GX's stock SQL datasource on DuckDB, both solved here:
- GX opens and closes a SQLAlchemy connection per metric and fetches results
  after closing it; a DuckDB cursor dies with its connection, so every metric
  fails ("list index out of range", GX issue #10738). GX keeps connections only
  for the dialects in `_PERSISTED_CONNECTION_DIALECTS`; our execution engine
  keeps one connection for its life, as GX does for SQLite.
- DuckDB refuses a second connection with another configuration to a file the
  process already holds, and only one process may write. So the engine does not
  open the file at all: it runs on cursors of the caller's connection, and the
  suites run where the data lives, inside the pipeline's own transaction scope.
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Generator, Iterator, Literal, Type

import duckdb
import sqlalchemy as sa
from duckdb_engine import ConnectionWrapper
from great_expectations.datasource.fluent import SQLDatasource
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from sqlalchemy.pool import NullPool

_LIVE_CONNECTIONS: dict[str, duckdb.DuckDBPyConnection] = {}
_CURSORS: dict[str, list[duckdb.DuckDBPyConnection]] = {}
_ENGINES: dict[str, list[PersistentConnectionExecutionEngine]] = {}
_names = itertools.count(1)


class PersistentConnectionExecutionEngine(SqlAlchemyExecutionEngine):
    @contextlib.contextmanager
    def get_connection(self) -> Generator[sa.Connection, None, None]:
        if self._connection is None:
            self._connection = self.engine.connect()
        yield self._connection


class LiveDuckDBDatasource(SQLDatasource):
    """`connection_string` names a connection registered with `live_connection()`."""

    type: Literal["hmo_duckdb"] = "hmo_duckdb"

    @property
    def execution_engine_type(self) -> Type[SqlAlchemyExecutionEngine]:
        return PersistentConnectionExecutionEngine

    def _create_engine(self) -> sa.Engine:
        name = str(self.connection_string)
        connection = _LIVE_CONNECTIONS[name]

        def new_cursor() -> ConnectionWrapper:
            cursor = connection.cursor()
            _CURSORS[name].append(cursor)
            return ConnectionWrapper(cursor)

        return sa.create_engine(
            "duckdb://",
            creator=new_cursor,
            poolclass=NullPool,  # each SQLAlchemy connection gets its own cursor and transaction
        )

    def get_execution_engine(self) -> SqlAlchemyExecutionEngine:
        if self._execution_engine is None:
            self._execution_engine = PersistentConnectionExecutionEngine(engine=self.get_engine())
            _ENGINES[str(self.connection_string)].append(self._execution_engine)
        return self._execution_engine


@contextlib.contextmanager
def live_connection(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """Register `con` for LiveDuckDBDatasource; yields the name to use as connection_string."""
    name = f"hmo-live-{next(_names)}"
    _LIVE_CONNECTIONS[name] = con
    _CURSORS[name] = []
    _ENGINES[name] = []
    try:
        yield name
    finally:
        # Cursors outlive their parent connection in DuckDB and would keep the
        # file open: end GX's persistent connections, then every cursor, so the
        # caller's close() really releases the file.
        for engine in _ENGINES.pop(name):
            if engine._connection is not None:
                engine._connection.close()
                engine._connection = None
            engine.engine.dispose()
        for cursor in _CURSORS.pop(name):
            cursor.close()
        del _LIVE_CONNECTIONS[name]
