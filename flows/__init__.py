"""Prefect flows and the `hmo` command line: orchestration only."""
