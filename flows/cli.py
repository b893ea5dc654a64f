"""`hmo`: the Observatory's command line. Errors become one clear line and exit 1."""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Sequence

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import duckdb  # noqa: E402

from flows import query  # noqa: E402
from hmo.errors import ConfigurationError, HmoError  # noqa: E402
from hmo.spreadsheets import defused  # noqa: E402
from hmo.settings import Paths  # noqa: E402


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line)


def cmd_run(args: argparse.Namespace, paths: Paths) -> int:
    from flows import progress, service
    from flows.server import prefect_api
    from flows.writer import process_alive

    def imports() -> None:
        from flows import stages
        from flows.pipeline import hmo_run  # noqa: F401

        stages.preload()

    # Ingest's line per file goes to the ingest task's Prefect log too (read when Prefect is first imported).
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "ingest")
    served = service.read_state(paths)  # a running `hmo serve` lends its Prefect server
    shared = served["prefect_api"] if served and process_alive(served["pid"]) else None
    with progress.Watch(paths, "run", verbose=args.verbose) as watch, contextlib.ExitStack() as api:
        with progress.step("start") as headline:
            prefect = api.enter_context(prefect_api(paths.work / "prefect-server.log", meanwhile=imports,
                                                    running=shared))
            headline.append(f"a temporary Prefect server at {prefect.url}" if prefect.temporary
                            else f"hmo serve's Prefect server at {prefect.url}" if prefect.url and prefect.url == shared
                            else f"the Prefect API at {prefect.url}" if prefect.url else "no Prefect API configured")
        from flows.pipeline import hmo_run

        watch.quiet_prefect()  # Prefect set its console handlers up on import
        summary = hmo_run(str(paths.root), full_refresh=args.full_refresh)
        if prefect.temporary:  # the run's last logs and events reach it first: seconds on a busy machine
            with progress.step("stop") as headline:
                api.close()
                headline.append("the temporary Prefect server is stopped")
    return _finish(summary, watch.log_path)


def _finish(summary, log: Path | None = None) -> int:  # type: ignore[no-untyped-def]
    _print_lines(summary.lines())
    if log is not None:
        print(f"log: {log}")
    if summary.failure:
        print(f"hmo: {summary.failure}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace, paths: Paths) -> int:
    from flows import stages

    paths.ensure()
    copied = stages.copy_samples(paths)
    print(f"copied {len(copied)} sample submissions into {paths.inbox}")
    return cmd_run(argparse.Namespace(full_refresh=False, verbose=args.verbose), paths)


def cmd_ingest(args: argparse.Namespace, paths: Paths) -> int:
    from flows import stages

    # Duplicates are answered at once; new submissions wait for `hmo build`.
    summary = stages.run(paths, stages=("ingest", "receipts"))
    for received in summary.ingested.received:
        if not received.duplicate_of:
            print(f"received  {received.country}/{received.file_name} [submission {received.submission_id}]")
    _print_lines([line for line in summary.lines() if not line.startswith("no new files")])
    return 0


def cmd_build(args: argparse.Namespace, paths: Paths) -> int:
    from flows import progress, stages
    from harmonise.dbt import SPARK, DbtProject

    if args.target == SPARK:
        return _build_on_spark(args, paths)
    with progress.Watch(paths, "build", verbose=args.verbose) as watch:
        summary = stages.run(paths, DbtProject(paths, callbacks=[progress.dbt_event]),
                             full_refresh=args.full_refresh, stages=stages.BUILD_STAGES, call=progress.call)
    return _finish(summary, watch.log_path)


def _build_on_spark(args: argparse.Namespace, paths: Paths) -> int:
    import importlib.util

    from flows import progress, stages
    from harmonise.dbt import SPARK, DbtProject

    if not all(importlib.util.find_spec(name) for name in ("pyspark", "dbt.adapters.spark")):
        raise ConfigurationError("the Spark target needs pyspark and dbt-spark: `pip install -e '.[spark]'` "
                                 "(and Java 17)")
    if not paths.warehouse.exists():
        raise ConfigurationError(f"no warehouse in {paths.root}: Spark builds from what `hmo run` received "
                                 "and validated")
    with progress.Watch(paths, "build-spark", verbose=args.verbose) as watch:
        tables = stages.build_on_spark(paths, DbtProject(paths, callbacks=[progress.dbt_event], target=SPARK),
                                       full_refresh=args.full_refresh)
    print(f"built the marts on Spark from {paths.raw_lake} and {paths.validation_lake}: {tables}")
    print("read them with `hmo export <table> --target spark`")
    print(f"log: {watch.log_path}")
    return 0


def cmd_docs(args: argparse.Namespace, paths: Paths) -> int:
    from harmonise.dbt import DbtProject

    paths.ensure()
    page = DbtProject(paths).generate_docs(paths.dbt_docs)
    print(f"dbt docs (every model and column, English and Spanish): {page}")
    return 0


def cmd_check(args: argparse.Namespace, paths: Paths) -> int:
    file = Path(args.file)
    if not file.is_file():
        raise HmoError(f"no such file: {file}")
    country = (args.country or file.resolve().parent.name).upper()
    if len(country) != 3 or not country.isalpha():
        raise HmoError("say which country sends this file: --country ISO3 (or keep it in a folder named after it)")
    served = None if args.local else _served_check(paths, file, country, args.rows)
    if served is not None:
        return _print_check(served["profile"], served["preview_columns"], [tuple(row) for row in served["preview"]],
                            served["receipt"], served["verdict"])
    # Only here, not on the handed-over path: this import brings dbt and Great Expectations.
    from flows.check import check, template_missing

    if template_missing(paths):
        print("first check since the code lists or models changed: preparing them (once, some seconds)",
              file=sys.stderr)
    result = check(paths, file, country, preview_rows=args.rows)
    return _print_check(result.profile, result.preview_columns, result.preview, result.receipt, result.verdict)


def _served_check(paths: Paths, file: Path, country: str, rows: int) -> dict | None:
    """The check as `hmo serve` answers it (HMO_SERVE_URL, or the one <data>/work/serve.json names);
    None when none runs, or it cannot take the file (said on stderr): the caller then checks here."""
    from flows import service

    try:
        server = service.find(paths)
        if server is None:
            return None
        answer = service.remote_check(server, file, country, rows)
    except service.NotServed as exc:
        print(f"hmo: {exc}; checking here instead", file=sys.stderr)
        return None
    print(f"checked by hmo serve at {server.url}", file=sys.stderr)
    return answer


def _print_check(profile: str, columns: list[str], preview: list[tuple], receipt: str, verdict: str) -> int:
    """What `hmo check` prints, checked here or by `hmo serve`; the exit code of the verdict."""
    print(f"profile: {profile}")
    print("first mapped rows / primeras filas mapeadas:")
    _emit(columns, preview, "table")
    print()
    print(receipt, end="")
    return 0 if verdict == "accepted" else 2


def cmd_serve(args: argparse.Namespace, paths: Paths) -> int:
    if args.show:
        from flows.schedule import describe

        print("\n".join(describe(paths)))
        return 0
    from flows.service import serve

    serve(paths, args.host, args.port, schedule=not args.no_schedule, watch=not args.no_watch)
    return 0


def _who(args: argparse.Namespace) -> str:
    import getpass

    return args.by or os.environ.get("HMO_USER") or getpass.getuser()


def cmd_aliases_add(args: argparse.Namespace, paths: Paths) -> int:
    from ingest import aliases
    from hmo.warehouse import connect

    con = connect(paths.warehouse)
    try:
        added = aliases.add(con, paths, args.country, args.name, args.code, _who(args), source=args.source)
    finally:
        con.close()
    alias = added.alias
    print(f"added to {alias.alias_file}: {alias.reporting_country} writes {alias.name!r} for {alias.code} "
          f"(by {alias.added_by}, {alias.added_at})")
    for submission_id, file_name in added.fixes:
        print(f"rejected submission {submission_id} ({file_name}) has this name: `hmo revalidate {submission_id}` "
              "validates it again without a new file")
    return 0


def cmd_aliases_list(args: argparse.Namespace, paths: Paths) -> int:
    from ingest import aliases

    rows = [(a.reporting_country, a.name, a.code, a.source, a.added_by, a.added_at, str(a.alias_file))
            for a in aliases.read_all(paths)
            if not args.country or a.reporting_country == args.country.upper()]
    _emit(["country", "name", "code", "source", "added_by", "added_at", "file"], rows, args.format)
    return 0


def _password(args: argparse.Namespace) -> str | None:
    """The password from stdin with --password-stdin (for an administrator's script), else None: a new one."""
    if not args.password_stdin:
        return None
    given = sys.stdin.readline().rstrip("\r\n")
    if len(given) < 12:
        raise HmoError("a password given on stdin must have at least 12 characters")
    return given


def cmd_users_add(args: argparse.Namespace, paths: Paths) -> int:
    from portal.accounts import Accounts

    password = Accounts(paths).add(args.scope, args.email, _password(args), language=args.language)
    print(f"added {args.email.strip().lower()} for {args.scope.upper()}")
    if not args.password_stdin:
        print(f"temporary password (shown once; hand it over in person or by another channel): {password}")
    return 0


def cmd_users_disable(args: argparse.Namespace, paths: Paths) -> int:
    from portal.accounts import Accounts

    Accounts(paths).disable(args.scope, args.email)
    print(f"disabled {args.email.strip().lower()} ({args.scope.upper()}); its sessions are ended")
    return 0


def cmd_users_reset(args: argparse.Namespace, paths: Paths) -> int:
    from portal.accounts import Accounts

    password = Accounts(paths).reset(args.scope, args.email, _password(args))
    print(f"reset {args.email.strip().lower()} ({args.scope.upper()}): enabled, unlocked, its sessions ended")
    if not args.password_stdin:
        print(f"temporary password (shown once): {password}")
    return 0


def cmd_users_list(args: argparse.Namespace, paths: Paths) -> int:
    from portal.accounts import Accounts

    rows = [tuple(user.values()) for user in Accounts(paths).list()]
    _emit(["scope", "email", "language", "created_at", "state", "failed_sign_ins"], rows, args.format)
    return 0


def cmd_revalidate(args: argparse.Namespace, paths: Paths) -> int:
    from flows import stages
    from ingest.submissions import receive_again
    from hmo.warehouse import connect

    con = connect(paths.warehouse)
    try:
        new_id = receive_again(con, paths, args.submission_id, _who(args))
    finally:
        con.close()
    print(f"submission {args.submission_id} received again from the archive as submission {new_id}")
    return _finish(stages.run(paths, stages=stages.BUILD_STAGES))


def cmd_report(args: argparse.Namespace, paths: Paths) -> int:
    from flows import stages
    from report.figures import parse_period

    period = parse_period(args.period) if args.period else None
    languages = (args.language,) if args.language else stages.LANGUAGES
    reports = stages.write_reports(paths, period, languages, pdf=not args.no_pdf)
    for written in reports:
        for path in (written.html, written.pdf):
            if path:
                print(f"report {written.period:%Y-%m} ({written.language}): {path}")
    if args.mail:
        print(f"mailed to: {', '.join(stages.mail_reports(reports))}")
    return 0


def _emit(columns: list[str], rows: list[tuple], fmt: str) -> None:
    if fmt == "csv":
        # Ending rows in "\n" alone, Python 3.11's csv leaves a \r inside a cell unquoted, and a
        # spreadsheet starts a new row there (formula and all): made with "\r\n", it is quoted.
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        for row in [columns, *rows]:
            writer.writerow([defused(v) for v in row])
            print(buffer.getvalue()[:-2])
            buffer.seek(0)
            buffer.truncate()
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
    as_of = query.as_of_moment(args.as_of) if args.as_of else None
    answer = query.run(paths, args.query, timeout=args.timeout, as_of=as_of)
    _emit(answer.columns, answer.rows, args.format)
    return 0


# Before the first build made the marts, nothing has a verdict yet: what arrived is "received".
_RECEIVED_BEFORE_ANY_BUILD = """(select submission_id, reporting_country, file_name, 'received' as status, profile,
                                   data_rows, received_at, 0 as errors
                            from raw.submissions where load_state = 'received')"""


HISTORY = """
with versions as (
    select submission_id, count(*) as cells, sum(count) as persons
    from marts.fct_flows_history
    where reporting_country = ? and period = ?::date and flow_type = ?
    group by submission_id
),

accepted as (
    select submission_id, min(decided_at) as accepted_at
    from marts.fct_verdicts
    where status = 'accepted'
    group by submission_id
)

select
    versions.submission_id,
    submissions.file_name,
    strftime(accepted.accepted_at at time zone 'UTC', '%Y-%m-%d %H:%M UTC') as accepted_at,
    submissions.status as status_now,
    versions.cells,
    versions.persons,
    versions.persons - lag(versions.persons) over (order by versions.submission_id) as change,
    round(100.0 * (versions.persons - lag(versions.persons) over (order by versions.submission_id))
          / nullif(lag(versions.persons) over (order by versions.submission_id), 0), 1) as change_pct
from versions
join accepted using (submission_id)
join marts.fct_submissions as submissions using (submission_id)
order by versions.submission_id
"""


def cmd_history(args: argparse.Namespace, paths: Paths) -> int:
    import re

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.period):
        raise HmoError(f"period: {args.period!r} is not YYYY-MM")
    answer = query.run(paths, HISTORY, [args.country.upper(), f"{args.period}-01", args.flow_type.upper()])
    if not answer.rows:
        print(f"{args.country.upper()} {args.period} {args.flow_type.upper()}: no accepted submission holds "
              "this slice", file=sys.stderr)
    _emit(answer.columns, answer.rows, args.format)
    return 0


def cmd_export(args: argparse.Namespace, paths: Paths) -> int:
    from flows.export import export

    done = export(paths, args.table, args.format, Path(args.output) if args.output else None, period=args.period,
                  country=args.country, lang=args.lang, force=args.force, engine=args.target)
    when = "built on Spark" if args.target == "spark" else "published"
    print(f"exported {done.rows:,} rows of {done.table} ({when} {done.published_at:%Y-%m-%d %H:%M %Z}) "
          f"to {done.path}")
    if done.metadata is not None:
        print(f"reference metadata (English and Spanish, SDMX-JSON): {done.metadata}")
    return 0


def cmd_status(args: argparse.Namespace, paths: Paths) -> int:
    def listing(submissions: str) -> query.Answer:
        return query.run(
            paths,
            f"""
            select * from (
                select submission_id as id, reporting_country as country, file_name as file, status,
                       coalesce(profile, 'standard') as layout,
                       data_rows as rows, strftime(received_at, '%Y-%m-%d %H:%M') as received,
                       errors, null::varchar as note
                from {submissions}
                union all
                select null, if(contains(path, '/'), upper(split_part(path, '/', 1)), null), path, 'refused',
                       null, null, strftime(first_seen, '%Y-%m-%d %H:%M'), null, reason
                from raw.refused_files
            ) {"where country = ?" if args.country else ""}
            order by id is null, id, file
            """,
            [args.country.upper()] if args.country else [],
        )

    try:
        answer = listing("marts.fct_submissions")
    except duckdb.CatalogException:
        answer = listing(_RECEIVED_BEFORE_ANY_BUILD)
    _emit(answer.columns, answer.rows, args.format)
    if args.format == "table":
        unmapped = _unmapped(paths, args.country)
        if unmapped is not None and unmapped.rows:
            print()
            print("valores sin correspondencia / source values that did not map (Q03):")
            _emit(unmapped.columns, unmapped.rows, "table")
            print("`hmo aliases add <ISO3> \"<name as written>\" <code>` maps a name; then `hmo revalidate <id>`")
        # Status is the last publication's, not the live warehouse's mid-run state.
        print(f"as published {answer.published_at:%Y-%m-%d %H:%M:%S} (each run publishes anew)")
    return 0


def _unmapped(paths: Paths, country: str | None) -> "query.Answer | None":
    """Q03 as last published; None before the first build made the marts."""
    try:
        return query.run(
            paths,
            f"""
            select reporting_country as country, column_name as column, value, rows, submissions,
                   ambiguous_between as "name of"
            from fct_unmapped_values
            where maps_now_to is null {"and reporting_country = ?" if country else ""}
            order by country, rows desc, value
            """,
            [country.upper()] if country else [],
        )
    except duckdb.CatalogException:
        return None


def cmd_rebuild(args: argparse.Namespace, paths: Paths) -> int:
    from flows.rebuild import rebuild

    outcome = rebuild(paths)
    print(f"replayed {outcome.replayed} submissions from {paths.archive} and {paths.events}")
    if outcome.aliases_restored:
        print(f"put back {outcome.aliases_restored} national aliases into {paths.aliases} from the event log")
    if outcome.previous:
        print(f"the replaced warehouse is in {outcome.previous}")
    for line in outcome.verdicts_changed:
        print(f"kept the recorded verdict: {line}")
    for mart, (rows, differ) in outcome.compared.items():
        print(f"{mart}: {rows} rows, " + ("identical to the replaced warehouse" if not differ
                                          else f"{differ} rows differ from the replaced warehouse"))
    if outcome.summary and outcome.summary.published:
        print(f"published: {outcome.summary.published}")
    return 0


def cmd_backup(args: argparse.Namespace, paths: Paths) -> int:
    from pathlib import Path

    from flows.backup import backup

    result = backup(paths, Path(args.target))
    print(f"backup: {result.path}")
    print(f"{result.files} files, {result.bytes:,} bytes (schema version {result.schema_version})")
    return 0


def cmd_restore(args: argparse.Namespace, paths: Paths) -> int:
    from pathlib import Path

    from flows.backup import restore

    result = restore(paths, Path(args.backup), force=args.force)
    if result.replaced:
        print(f"moved the previous contents aside into {result.replaced}")
    parts = ", ".join(f"{name} {n}" for name, n in sorted(result.counts.items()))
    print(f"restored {result.files} files, {result.bytes:,} bytes ({parts}) from {result.source} "
          f"into {paths.root}")
    print(f"published: {result.published}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="hmo",
        description="Human Mobility Observatory. Data directory: HMO_DATA_DIR (default ./data).",
    )
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="ingest the inbox, validate, harmonise, answer and report (one Prefect flow)")
    run.add_argument("--full-refresh", action="store_true", help="rebuild the harmonised tables from the raw layer")
    run.set_defaults(func=cmd_run, writes=True)
    demo = sub.add_parser("demo", help="copy the bundled sample submissions into the inbox and run")
    demo.set_defaults(func=cmd_demo, writes=True)
    ingest = sub.add_parser("ingest", help="receive inbox files into the raw layer (no validation)")
    ingest.set_defaults(func=cmd_ingest, writes=True)
    build = sub.add_parser("build", help="validate received submissions, write receipts and build the harmonised tables")
    build.add_argument("--full-refresh", action="store_true", help="rebuild the harmonised tables from the raw layer")
    build.add_argument("--target", choices=("duckdb", "spark"), default=os.environ.get("HMO_TARGET", "duckdb"),
                       help="where dbt builds the marts (default HMO_TARGET, else duckdb): spark builds them "
                            "with pyspark from the Parquet copies of the raw layer and the verdicts, after "
                            "`hmo build` validated on DuckDB")
    build.set_defaults(func=cmd_build, writes=True)
    docs = sub.add_parser("docs", help="write dbt's documentation of every model and column (English and Spanish) "
                                       "as one page: data/dbt_docs/index.html")
    docs.set_defaults(func=cmd_docs, writes=True)  # dbt's catalog queries, and its hooks write, the warehouse
    for writer in (run, demo, ingest, build, docs):
        writer.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                            help="if another hmo command is writing, wait up to this long for it "
                                 "(default: stop at once)")
    for watched in (run, demo, build):
        watched.add_argument("--verbose", action="store_true",
                             help="show Prefect's and dbt's log lines on stderr too (they always go to the "
                                  "run's log file, <data>/logs/)")
    reported = sub.add_parser(
        "report", help="write the monthly report to the PPT (HTML and PDF, Spanish and English) from the published "
                       "tables: data/reports/<YYYY-MM>/report.<lang>.html|pdf")
    reported.add_argument("--period", help="the report's month, YYYY-MM (default: the latest with accepted data)")
    reported.add_argument("--language", choices=["es", "en"], help="one language only (default: both)")
    reported.add_argument("--no-pdf", action="store_true", help="the HTML only")
    reported.add_argument("--mail", action="store_true",
                          help="send the PDFs to the PPT (HMO_SMTP_HOST, HMO_REPORT_TO; the monthly scheduled run "
                               "does when they are set)")
    reported.set_defaults(func=cmd_report, writes=False)
    check = sub.add_parser(
        "check", help="dry run: which profile matches a file, its first mapped rows and the verdict it would get "
                      "(nothing is loaded; exit 0 accepted, 2 rejected)")
    check.add_argument("file")
    check.add_argument("--country", help="ISO3 of the sending country (default: the file's folder name)")
    check.add_argument("--rows", type=int, default=10, help="how many mapped rows to show")
    check.add_argument("--local", action="store_true",
                       help="check in this process even when `hmo serve` runs (by default the file is handed "
                            "to it: HMO_SERVE_URL, or the one <data>/work/serve.json names)")
    check.set_defaults(func=cmd_check)
    serve = sub.add_parser(
        "serve", help="the Observatory's long-running service: the country portal, a receipt for each file "
                      "dropped into the inbox, the monthly report on its schedule, and `hmo check` in about a "
                      "second; localhost only unless --host, and behind an HTTPS reverse proxy before it is exposed")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    serve.add_argument("--show", action="store_true",
                       help="print the monthly report's deployment, its schedule (HMO_REPORT_SCHEDULE, default the "
                            "16th at 06:00 UTC) and its next three runs, then exit")
    serve.add_argument("--no-schedule", action="store_true",
                       help="do not serve the monthly report's schedule (no Prefect server is started)")
    serve.add_argument("--no-watch", action="store_true",
                       help="do not run the pipeline on files dropped into the inbox: they wait for `hmo run`")
    serve.set_defaults(func=cmd_serve)
    status = sub.add_parser("status", help="submissions, their verdicts and the inbox files refused, as last published")
    status.add_argument("--country", help="ISO3 of one reporting country")
    status.add_argument("--format", choices=["table", "csv", "json"], default="table")
    status.set_defaults(func=cmd_status)
    sql = sub.add_parser("sql", help="run one read-only SQL statement on the last published copy; "
                                     "mart tables need no schema")
    sql.add_argument("query", help='for example: "select * from fct_flows limit 5"')
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.add_argument("--timeout", type=float, default=query.TIMEOUT, metavar="SECONDS",
                     help=f"stop the query after this long (default {query.TIMEOUT:g})")
    sql.add_argument("--as-of", metavar="WHEN",
                     help="fct_flows as it stood then: a date (the end of that day, UTC) or a time "
                          "(YYYY-MM-DD HH:MM, UTC unless an offset is given)")
    sql.set_defaults(func=cmd_sql)
    history = sub.add_parser("history", help="every accepted version of one slice of fct_flows (a reporting "
                                             "country's month of a flow type), with what each changed")
    history.add_argument("country", help="ISO3 of the reporting country")
    history.add_argument("period", help="the month, YYYY-MM")
    history.add_argument("flow_type", help="a flow type code, e.g. IRREGULAR_TRANSIT")
    history.add_argument("--format", choices=["table", "csv", "json"], default="table")
    history.set_defaults(func=cmd_history)
    export = sub.add_parser("export", help="write one table of the published marts as Parquet or CSV "
                                           "(CSV safe to open in a spreadsheet)")
    export.add_argument("table", help="a table or view of the marts, e.g. fct_flows")
    export.add_argument("--format", choices=["parquet", "csv", "sdmx-csv"], required=True,
                        help="sdmx-csv: SDMX-CSV 2.0 of fct_flows, with its structure (SDMX-ML 3.0) beside it")
    export.add_argument("--output", help="the file to write (default ./<table>[-<country>][-<period>].<format>)")
    export.add_argument("--period", help="YYYY-MM, or YYYY-MM:YYYY-MM for a range of months (tables with a period)")
    export.add_argument("--country", help="ISO3 of one reporting country (tables with reporting_country)")
    export.add_argument("--lang", choices=["es", "en"],
                        help="after each coded column, its label in this language (flow_type_label, ...)")
    export.add_argument("--force", action="store_true", help="replace the output file if it exists")
    export.add_argument("--target", choices=("duckdb", "spark"), default="duckdb",
                        help="spark: the marts `hmo build --target spark` built, in place of the published copy")
    export.set_defaults(func=cmd_export)
    aliases = sub.add_parser("aliases", help="a country's own spellings of country names (its alias file)")
    aliases_sub = aliases.add_subparsers(dest="aliases_command", required=True)
    add = aliases_sub.add_parser(
        "add", help="record that a country writes a name for a code (in <data>/aliases/<ISO3>.csv, with who and "
                    "when); then `hmo revalidate` the submissions it fixes")
    add.add_argument("country", help="ISO3 of the reporting country that writes the name")
    add.add_argument("name", help="the name as the country writes it")
    add.add_argument("code", help="the ISO 3166-1 alpha-3 code (or CL_NAT_EXTRA code) it stands for")
    add.add_argument("--source", help="why: the export or request it comes from (default: who asked)")
    add.add_argument("--by", help="who records it (default: HMO_USER or the login name)")
    add.set_defaults(func=cmd_aliases_add, writes=True)
    listed = aliases_sub.add_parser("list", help="every national alias, shipped and added")
    listed.add_argument("country", nargs="?", help="ISO3 of one reporting country")
    listed.add_argument("--format", choices=["table", "csv", "json"], default="table")
    listed.set_defaults(func=cmd_aliases_list)
    users = sub.add_parser("users", help="the country portal's accounts (`hmo serve`): who signs in for which country")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    for name, func, text in (
            ("add", cmd_users_add, "a new account, with a temporary password printed once"),
            ("disable", cmd_users_disable, "the account can no longer sign in; its sessions end"),
            ("reset", cmd_users_reset, "a new temporary password; the account is enabled and unlocked again")):
        command = users_sub.add_parser(name, help=text)
        command.add_argument("scope", help="ISO3 of the member country the person reports for, or ADMIN "
                                           "(manages accounts, sees all) or PPT (the Presidency Pro-Tempore, sees all)")
        command.add_argument("email", help="the person's e-mail address: what they sign in with")
        if name != "disable":
            command.add_argument("--password-stdin", action="store_true",
                                 help="read the password from the first line of stdin instead of making one")
        if name == "add":
            command.add_argument("--language", choices=["es", "en"], default="es",
                                 help="the portal's language for this person (they can switch it)")
        command.set_defaults(func=func)
    users_list = users_sub.add_parser("list", help="every account, with its state (active, locked, disabled)")
    users_list.add_argument("--format", choices=["table", "csv", "json"], default="table")
    users_list.set_defaults(func=cmd_users_list)
    revalidate = sub.add_parser(
        "revalidate", help="validate a rejected submission again from its archived bytes (after an alias or a "
                           "profile fixed what rejected it), as a new submission with its own receipt")
    revalidate.add_argument("submission_id", type=int)
    revalidate.add_argument("--by", help="who asks (default: HMO_USER or the login name)")
    revalidate.set_defaults(func=cmd_revalidate, writes=True)
    rebuild = sub.add_parser(
        "rebuild", help="make a new warehouse from the archive and the event log, compare it with the old one "
                        "(moved aside into replaced-<time>/) and publish it")
    rebuild.set_defaults(func=cmd_rebuild, writes=True)
    backup = sub.add_parser(
        "backup", help="write a verified copy of the archive, events, receipts, aliases, portal accounts, reports "
                       "and warehouse into <dir>/hmo-backup-<UTC time>/")
    backup.add_argument("target", help="a directory on another disk or mount (not inside the data directory)")
    backup.set_defaults(func=cmd_backup, writes=True)
    restore = sub.add_parser(
        "restore", help="check a backup against its manifest, put it back into the data directory and publish it")
    restore.add_argument("backup", help="the hmo-backup-<UTC time> directory")
    restore.add_argument("--force", action="store_true",
                         help="move what the data directory holds aside into replaced-<time>/ first")
    restore.set_defaults(func=cmd_restore, writes=True)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    import contextlib
    import signal

    from flows.writer import StopSignals, writer_lock

    args = parser().parse_args(argv)
    paths = Paths.from_env()
    stop = StopSignals()
    # The writer lock comes before anything heavy (Prefect, its server, dbt): a
    # second writer hears so within a second, not after a minute of start-up.
    holding = (writer_lock(paths.writer_lock, f"hmo {args.command}", wait=getattr(args, "wait", 0.0))
               if getattr(args, "writes", False) else contextlib.nullcontext())
    message: str | None = None
    status = 1
    try:
        with stop, holding:
            status = args.func(args, paths)
    except HmoError as exc:
        message = str(exc)
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
    except BaseException as exc:
        # A stop may surface as any exception (DuckDB's "Query interrupted"); a
        # plain KeyboardInterrupt is a Ctrl-C just before or after the handlers were set.
        if not (stop.received or isinstance(exc, KeyboardInterrupt)):
            raise
        stop.received = stop.received or int(signal.SIGINT)
    # A stop is reported as such even when a library made it a failure (dbt does).
    if stop.received:
        message, status = f"stopped (signal {stop.received})", 128 + stop.received
    if message is not None:
        print(f"hmo: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
