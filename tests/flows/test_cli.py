"""The `hmo` command line without Prefect: status, sql and error messages (more on sql in test_query.py)."""
from __future__ import annotations

import json

from flows.cli import main
from ingest.submissions import ingest_inbox
from ingest.warehouse import connect, publish
from conftest import drop_sample


def test_sql_and_status_read_the_published_copy_in_each_format(paths, capsys):
    drop_sample(paths, "PAN")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    con.close()
    publish(paths.warehouse, paths.published)

    assert main(["status", "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["country"] == "PAN" and row["status"] == "received" and row["rows"] == 18

    assert main(["sql", "select count(*) as n from raw.observations", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "n\n18\n"

    assert main(["sql", "select 1 as one"]) == 0
    assert "(1 rows)" in capsys.readouterr().out


def test_sql_is_read_only(paths, capsys):
    connect(paths.warehouse).close()
    publish(paths.warehouse, paths.published)
    assert main(["sql", "create table x (a int)"]) == 1
    assert "read-only" in capsys.readouterr().err


def test_a_missing_warehouse_is_a_clear_error(paths, capsys):
    assert main(["status"]) == 1
    assert "hmo run" in capsys.readouterr().err
