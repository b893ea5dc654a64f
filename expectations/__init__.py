"""The data standard's rules as Great Expectations suites that run inside DuckDB."""
