"""`hmo`: the Observatory's command line. Errors become one clear line and exit 1."""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Sequence

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import duckdb  # noqa: E402

from ingest.errors import HmoError  # noqa: E402
from ingest.settings import Paths  # noqa: E402
from ingest.warehouse import connect  # noqa: E402


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line)


def cmd_run(args: argparse.Namespace, paths: Paths) -> int:
    from flows.server import prefect_api

    def imports() -> None:
        from flows import stages
        from flows.pipeline import hmo_run  # noqa: F401

        stages.preload()

    with prefect_api(paths.work / "prefect-server.log", meanwhile=imports):
        from flows.pipeline import hmo_run

        summary = hmo_run(str(paths.root), full_refresh=args.full_refresh)
    _print_lines(summary.lines())
    return 0


def cmd_demo(args: argparse.Namespace, paths: Paths) -> int:
    from flows import stages

    paths.ensure()
    copied = stages.copy_samples(paths)
    print(f"copied {len(copied)} sample submissions into {paths.inbox}")
    return cmd_run(argparse.Namespace(full_refresh=False), paths)


def cmd_ingest(args: argparse.Namespace, paths: Paths) -> int:
    from flows import stages

    summary = stages.RunSummary(ingested=stages.ingest(paths))
    for received in summary.ingested.received:
        if not received.duplicate_of:
            print(f"received  {received.country}/{received.file_name} [submission {received.submission_id}]")
    _print_lines([line for line in summary.lines() if not line.startswith("no new files")])
    return 0


def cmd_build(args: argparse.Namespace, paths: Paths) -> int:
    from flows import stages
    from harmonise.dbt import DbtProject

    dbt = DbtProject(paths)
    summary = stages.RunSummary(verdicts=stages.validate(paths, dbt))
    summary.receipts = stages.answer(paths, summary.ingested, summary.verdicts)
    stages.build(paths, dbt, full_refresh=args.full_refresh)
    _print_lines(summary.lines())
    return 0


def cmd_check(args: argparse.Namespace, paths: Paths) -> int:
    from pathlib import Path

    from flows import stages

    file = Path(args.file)
    if not file.is_file():
        raise HmoError(f"no such file: {file}")
    country = (args.country or file.resolve().parent.name).upper()
    if len(country) != 3 or not country.isalpha():
        raise HmoError("say which country sends this file: --country ISO3 (or keep it in a folder named after it)")
    result = stages.check(file, country, preview_rows=args.rows)
    print(f"profile: {result.profile}")
    print("first mapped rows / primeras filas mapeadas:")
    _emit(result.preview_columns, result.preview, "table")
    print()
    print(result.receipt, end="")
    return 0 if result.verdict == "accepted" else 2


def cmd_report(args: argparse.Namespace, paths: Paths) -> int:
    from flows import stages

    print(f"report: {stages.report(paths)}")
    return 0


def _query(paths: Paths, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
    con = connect(paths.warehouse, read_only=True)
    try:
        # Marts are nameable without their schema (once a build has made them).
        present = {row[0] for row in con.execute("select schema_name from information_schema.schemata").fetchall()}
        search_path = ",".join(s for s in ("marts", "main", "raw") if s in present)
        con.execute(f"set search_path = '{search_path}'")
        cursor = con.execute(sql, params or [])
        if cursor.description is None:
            return [], []
        return [d[0] for d in cursor.description], cursor.fetchall()
    finally:
        con.close()


def _emit(columns: list[str], rows: list[tuple], fmt: str) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, row)) for row in rows], default=str, ensure_ascii=False, indent=1))
    else:
        cells = [[("" if v is None else str(v)) for v in row] for row in rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
        print("  ".join("-" * w for w in widths))
        for row in cells:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
        print(f"({len(rows)} rows)")


def cmd_sql(args: argparse.Namespace, paths: Paths) -> int:
    columns, rows = _query(paths, args.query)
    _emit(columns, rows, args.format)
    return 0


def cmd_status(args: argparse.Namespace, paths: Paths) -> int:
    where = "where reporting_country = ?" if args.country else ""
    columns, rows = _query(
        paths,
        f"""
        select submission_id as id, reporting_country as country, file_name as file, status,
               coalesce(profile, 'standard') as layout,
               data_rows as rows, strftime(received_at, '%Y-%m-%d %H:%M') as received,
               (select count(*) from raw.rule_failures f
                 where f.submission_id = s.submission_id and f.severity = 'error') as errors
        from raw.submissions s {where} order by submission_id
        """,
        [args.country.upper()] if args.country else [],
    )
    _emit(columns, rows, args.format)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="hmo",
        description="Human Mobility Observatory. Data directory: HMO_DATA_DIR (default ./data).",
    )
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="ingest the inbox, validate, harmonise, answer and report (one Prefect flow)")
    run.add_argument("--full-refresh", action="store_true", help="rebuild the harmonised tables from the raw layer")
    run.set_defaults(func=cmd_run)
    sub.add_parser("demo", help="copy the bundled sample submissions into the inbox and run").set_defaults(func=cmd_demo)
    sub.add_parser("ingest", help="receive inbox files into the raw layer (no validation)").set_defaults(func=cmd_ingest)
    build = sub.add_parser("build", help="validate received submissions, write receipts and build the harmonised tables")
    build.add_argument("--full-refresh", action="store_true", help="rebuild the harmonised tables from the raw layer")
    build.set_defaults(func=cmd_build)
    sub.add_parser("report", help="write the HTML quality report").set_defaults(func=cmd_report)
    check = sub.add_parser(
        "check", help="dry run: which profile matches a file, its first mapped rows and the verdict it would get "
                      "(nothing is loaded; exit 0 accepted, 2 rejected)")
    check.add_argument("file")
    check.add_argument("--country", help="ISO3 of the sending country (default: the file's folder name)")
    check.add_argument("--rows", type=int, default=10, help="how many mapped rows to show")
    check.set_defaults(func=cmd_check)
    for name, func, text in (
        ("status", cmd_status, "submissions and their verdicts"),
        ("sql", cmd_sql, "run a read-only SQL query; mart tables need no schema"),
    ):
        command = sub.add_parser(name, help=text)
        if name == "sql":
            command.add_argument("query", help='for example: "select * from fct_flows limit 5"')
        else:
            command.add_argument("--country", help="ISO3 of one reporting country")
        command.add_argument("--format", choices=["table", "csv", "json"], default="table")
        command.set_defaults(func=func)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    paths = Paths.from_env()
    try:
        return args.func(args, paths)
    except HmoError as exc:
        print(f"hmo: {exc}", file=sys.stderr)
        return 1
    except duckdb.Error as exc:
        print(f"hmo: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
