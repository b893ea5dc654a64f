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

The committed project (expectations/gx/great_expectations.yml) names the
connection `${hmo_connection}`; a run fills it through the context's
`runtime_environment` with the name `live_connection()` yields. GX 1.24 has no
supported way to keep a DuckDB connection open (tests/expectations/
test_gx_duckdb.py says when that changes); great-expectations is pinned
(pyproject.toml) and those tests fail on an upgrade that breaks this seam.
"""
from __future__ import annotations

import contextlib
import itertools
import re
from typing import Generator, Iterator, Literal, Type

import duckdb
import sqlalchemy as sa
from duckdb_engine import ConnectionWrapper
from great_expectations.datasource.fluent import SQLDatasource
from great_expectations.datasource.fluent.config_str import ConfigStr
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from sqlalchemy.pool import NullPool

_LIVE_CONNECTIONS: dict[str, duckdb.DuckDBPyConnection] = {}
_CURSORS: dict[str, list[duckdb.DuckDBPyConnection]] = {}
_ENGINES: dict[str, list[PersistentConnectionExecutionEngine]] = {}
_names = itertools.count(1)


_COUNT_WRAPPER = re.compile(
    r"^SELECT COUNT\(\*\) as unexpected_row_count FROM \((?P<inner>.*)\) AS substituted_batch_subquery$",
    re.DOTALL,
)


class PersistentConnectionExecutionEngine(SqlAlchemyExecutionEngine):
    """Keeps one connection, and runs each raw-SQL query (GX's query metrics) once.

    GX computes an UnexpectedRowsExpectation twice: `SELECT COUNT(*) FROM (q)`
    for the count and `q` again for the sample rows, and
    `ValidationDefinition.get_unexpected_rows` runs `q` a third time for every
    failing row. Each distinct `q` is materialised once in a temporary table of
    this connection and all three read that: the rule's SQL runs once.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._materialised: dict[str, str] = {}

    @contextlib.contextmanager
    def get_connection(self) -> Generator[sa.Connection, None, None]:
        if self._connection is None:
            self._connection = self.engine.connect()
        yield self._connection

    def _materialise(self, sql: str) -> str:
        if sql not in self._materialised:
            table = f"hmo_gx_result_{len(self._materialised) + 1}"
            with self.get_connection() as connection:
                self._execute_query_with_recovery(
                    connection, sa.text(f"create or replace temp table {table} as {sql}")
                )
            self._materialised[sql] = table
        return self._materialised[sql]

    def execute_query(self, query):  # type: ignore[override]
        if isinstance(query, sa.TextClause):
            text = query.text
            counted = _COUNT_WRAPPER.match(text.strip())
            if counted:
                table = self._materialise(counted.group("inner"))
                query = sa.text(f"select count(*) as unexpected_row_count from {table}")
            elif text.lstrip().lower().startswith(("select", "with")):
                query = sa.text(f"select * from {self._materialise(text)}")
        return super().execute_query(query)


class LiveDuckDBDatasource(SQLDatasource):
    """`connection_string` names a connection registered with `live_connection()`."""

    # GX tells datasources apart by this field; its own (PostgresDatasource, ...) narrow it the same way.
    type: Literal["hmo_duckdb"] = "hmo_duckdb"  # type: ignore[assignment]

    @property
    def execution_engine_type(self) -> Type[SqlAlchemyExecutionEngine]:
        return PersistentConnectionExecutionEngine

    def _connection_name(self) -> str:
        # A committed config names the connection as `${...}`, filled from the context's runtime_environment.
        value = self.connection_string
        if isinstance(value, ConfigStr):
            assert self._config_provider is not None  # a datasource loaded from a project has its context's
            return value.get_config_value(self._config_provider)
        return value

    def _create_engine(self) -> sa.Engine:
        name = self._connection_name()
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
            # The engine's own default copies every batch into a temporary table
            # first (GX's `create_temp_table`): 10M rows copied, ~7 s, before any
            # rule runs. The datasource's setting (False unless asked) decides.
            self._execution_engine = PersistentConnectionExecutionEngine(
                engine=self.get_engine(), create_temp_table=self.create_temp_table
            )
            _ENGINES[self._connection_name()].append(self._execution_engine)
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
