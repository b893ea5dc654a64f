"""Open and check the GX project in expectations/gx/ (the suites are the rules' only definition).

    python -m expectations.gx_project check     # what make test checks too
    python -m expectations.gx_project measure [STORED] [RUNS]
                                                # the Data Docs action's cost with STORED results kept

To change a rule, edit its suite through GX and check the files:

    from expectations.gx_project import open_project
    context = open_project()
    suite = context.suites.get("standard_row")
    ...                                          # e.g. an expectation's unexpected_rows_query
    suite.save()                                 # GX writes expectations/gx/expectations/standard_row.json

`open_project` points everything a run would write (results, Data Docs) at a
scratch folder, so nothing but the suites you save changes here.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from expectations.rules import GX_DIR, RULES, SEVERITIES, SUITES, load_rules
from expectations.suites import (
    BATCH_PARAMETER,
    BATCH_TABLES,
    CHECKPOINT,
    CHECKPOINT_FILES_ONLY,
    GX_PROJECT,
    import_gx,
)

LEVEL_OF_PREFIX = {"S": "file", "R": "row", "C": "consistency"}  # DATA_STANDARD.md §6
SITES = ("country", "staff")
RUNTIME_PATHS = ("hmo_country_results", "hmo_staff_results", "hmo_country_site", "hmo_staff_site")


def open_project(project: Path = GX_PROJECT, scratch: Path | None = None) -> Any:
    """The project's file data context, with what runs write sent to `scratch` (a new temporary folder by default)."""
    gx = import_gx()
    scratch = scratch or Path(tempfile.mkdtemp(prefix="hmo-gx-project-"))
    environment = {name: str(scratch / name) for name in RUNTIME_PATHS}
    environment["hmo_connection"] = "none: nothing connects while the project is edited"
    return gx.get_context(mode="file", project_root_dir=str(project), runtime_environment=environment)


def check(project: Path = GX_PROJECT) -> list[str]:
    """What is wrong with the project's files, as sentences; [] when nothing is."""
    gx_dir = project / "gx"
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hmo-gx-check-") as scratch:
        context = open_project(project, Path(scratch))
        problems += _check_suites(context)
        problems += _check_checkpoints(context)
        problems += _check_config(context)
    rules = load_rules(gx_dir)
    if project == GX_PROJECT and [r.rule_id for r in rules] != [r.rule_id for r in RULES]:
        problems.append("expectations.rules.RULES was read from other files than these")
    loaded = {r.rule_id: r for r in rules}
    for suite_name in SUITES.values():
        suite = context.suites.get(suite_name)
        for expectation in suite.expectations:
            rule = loaded[expectation.meta["rule_id"]]
            if SEVERITIES[expectation.severity.value] != rule.severity:
                problems.append(f"{rule.rule_id}: rules.py reads another severity than GX")
            query = getattr(expectation, "unexpected_rows_query", None)
            if query is not None and query != rule.sql:
                problems.append(f"{rule.rule_id}: rules.py reads another query than GX")
    return problems


def _check_suites(context: Any) -> list[str]:
    from great_expectations.expectations import UnexpectedRowsExpectation

    problems = []
    names = {suite.name for suite in context.suites.all()}
    if names != set(SUITES.values()):
        problems.append(f"the suites are {sorted(names)}, not one per level {sorted(SUITES.values())}")
    for level, suite_name in SUITES.items():
        if suite_name not in names:
            continue
        for expectation in context.suites.get(suite_name).expectations:
            meta = expectation.meta or {}
            rule_id = meta.get("rule_id", "")
            where = f"{suite_name}: {rule_id or expectation.expectation_type}"
            if LEVEL_OF_PREFIX.get(rule_id[:1]) != level:
                problems.append(f"{where}: not a {level}-level rule of DATA_STANDARD.md §6")
            if not (meta.get("message_en") and meta.get("message_es")):
                problems.append(f"{where}: meta needs message_en and message_es")
            if not (expectation.description or "").startswith(rule_id) or not rule_id:
                problems.append(f"{where}: the description must start with the rule id")
            if expectation.severity.value not in SEVERITIES:
                problems.append(f"{where}: severity {expectation.severity.value} is neither critical nor warning")
            if isinstance(expectation, UnexpectedRowsExpectation):
                if "{batch}" not in str(expectation.unexpected_rows_query):
                    problems.append(f"{where}: the query must read {{batch}}, the batch GX validates")
            elif not hasattr(expectation, "column"):
                problems.append(f"{where}: a built-in must be a column-map expectation (its failing rows "
                                "come from unexpected_index_list)")
    return problems


def _check_checkpoints(context: Any) -> list[str]:
    problems = []
    expected = {CHECKPOINT: list(SUITES.values()), CHECKPOINT_FILES_ONLY: [SUITES["file"]]}
    for name, suites in expected.items():
        checkpoint = context.checkpoints.get(name)
        ran = [definition.suite.name for definition in checkpoint.validation_definitions]
        if ran != suites:
            problems.append(f"checkpoint {name} runs {ran}, not {suites}")
        formats = checkpoint.result_format
        if not isinstance(formats, dict) or formats.get("result_format") != "SUMMARY" or formats.get(
                "unexpected_index_column_names") != ["submission_id"]:
            problems.append(f"checkpoint {name}: result_format must be SUMMARY with every failing submission_id")
        actions = [(a.type, list(getattr(a, "site_names", []))) for a in checkpoint.actions]
        if actions != [("hmo_update_site_data_docs", list(SITES))]:
            problems.append(f"checkpoint {name}: its one action updates the sites {SITES} (got {actions})")
        for definition in checkpoint.validation_definitions:
            batch = definition.batch_definition
            asset = batch.data_asset
            table = str(getattr(asset, "table_name", None) or getattr(asset, "query", ""))
            if BATCH_TABLES.get(asset.name, "?") not in table:
                problems.append(f"{definition.name}: asset {asset.name} does not read {BATCH_TABLES.get(asset.name)}")
            if getattr(batch.partitioner, "column_name", None) != BATCH_PARAMETER:
                problems.append(f"{definition.name}: the batch must be one country's ({BATCH_PARAMETER})")
    return problems


def _check_config(context: Any) -> list[str]:
    problems = []
    config = context.get_config().to_json_dict()
    sites = config.get("data_docs_sites") or {}
    if sorted(sites) != sorted(SITES):
        problems.append(f"the Data Docs sites are {sorted(sites)}, not {list(SITES)}")
    staff_source = (((sites.get("staff") or {}).get("site_section_builders") or {}).get("validations") or {})
    if staff_source.get("source_store_name") != "staff_validation_results_store":
        problems.append("the staff site must read staff_validation_results_store (every country)")
    written = [store["store_backend"]["base_directory"] for name, store in config["stores"].items()
               if store["class_name"] == "ValidationResultsStore"]
    written += [site["store_backend"]["base_directory"] for site in sites.values()]
    for directory in written:
        if not directory.startswith("${"):
            problems.append(f"{directory}: what a run writes belongs to the data directory, not the repository")
    return problems


def measure(stored: int = 3000, runs: int = 5, project: Path = GX_PROJECT) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of the checkpoint's action in each of `runs` runs of one country's batch,
    with `stored` validation results in the stores.

    The batch: one file of 300 rows, all failing R02, so every run stores results
    with GX's full 200-row sample. The stores are filled as a long history leaves
    them: the country's partition and the staff's at the action's `keep_results`
    (the most it lets them hold, and all the action reads), the rest spread over
    the other members' partitions, which a PAN run does not open.
    """
    import shutil
    import time

    from expectations.gx_docs import UpdateSiteDataDocsAction
    from expectations.validate import prepare_batches
    from hmo.settings import ISO3_MEMBERS, PROJECT_ROOT, Paths
    from hmo.warehouse import connect

    with tempfile.TemporaryDirectory(prefix="hmo-gx-measure-") as folder:
        paths = Paths(Path(folder))
        con = connect(paths.warehouse)
        for seed in ("cl_age", "countries"):
            con.execute(f"create schema if not exists seeds; create table seeds.{seed} as "
                        "select * from read_csv(?, all_varchar = true)",
                        [str(PROJECT_ROOT / "dbt_project" / "seeds" / f"{seed}.csv")])
        con.execute("insert into raw.submissions (submission_id, reporting_country, file_name, archive_path, "
                    "sha256, size_bytes, data_rows, missing_columns, duplicate_columns, received_at, load_state) "
                    "values (1, 'PAN', 'f.csv', 'a', 's', 1, 300, [], [], now(), 'received')")
        columns = ["reporting_country", "period", "flow_type", "counterpart_country", "sex", "age",
                   "nationality", "count", "obs_status"]
        values = {"reporting_country": "'PAN'", "period": "date '2024-01-01'", "flow_type": "'ENTRY'",
                  "counterpart_country": "'_T'", "sex": "'_T'", "age": "'_T'", "nationality": "null::varchar",
                  "count": "1::bigint", "obs_status": "'A'"}
        con.execute("create schema marts; create table marts.fct_submitted_observations as "
                    "select 1 as submission_id, range + 2 as source_row, 'PAN' as inbox_country, "
                    "'_T' as border_point, "
                    + ", ".join(f"{values[c]} as {c}, " + ("'Nowhere ' || range" if c == "nationality" else "null")
                                + f"::varchar as {c}_value" for c in columns)
                    + ", null::varchar as nationality_ambiguous, null::varchar as counterpart_country_ambiguous "
                    "from range(300)")
        prepare_batches(con)
        run_suites_once = __import__("expectations.suites", fromlist=["run_suites"]).run_suites
        run_suites_once(con, project=project)
        keep = getattr(open_project(project).checkpoints.get(CHECKPOINT).actions[0], "keep_results", 120)
        results = paths.data_docs / "validations"
        others = [c for c in ISO3_MEMBERS if c != "PAN"]
        plan = {"PAN": keep, "staff": keep}
        rest = max(stored - 2 * keep, 0)
        plan.update({c: rest // len(others) + (1 if i < rest % len(others) else 0) for i, c in enumerate(others)})
        # One run's row-suite result (the one with the 200-row sample) and its page, as the pattern.
        [pattern] = [p for p in (results / "PAN").rglob("*.json") if "standard_row" in p.parts]
        [page] = list((paths.data_docs / "sites" / "PAN" / "validations" / "standard_row").rglob(pattern.stem + ".html"))
        for store, count in plan.items():
            _copy_history(pattern, page, results / store, paths.data_docs / "sites" / store, count,
                          "PAN" if store == "staff" else store, with_pages=store in ("PAN", "staff"))
        kept = sum(1 for _ in results.rglob("*.json"))
        timings: list[tuple[float, float]] = []
        original = UpdateSiteDataDocsAction.run

        def timed(self: Any, *args: Any, **kwargs: Any) -> dict:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(self, *args, **kwargs)
            finally:
                timings.append((time.perf_counter() - wall, time.process_time() - cpu))

        UpdateSiteDataDocsAction.run = timed  # type: ignore[method-assign]
        try:
            for _ in range(runs):
                run_suites_once(con, project=project)
        finally:
            UpdateSiteDataDocsAction.run = original  # type: ignore[method-assign]
            con.close()
        print(f"{kept} validation results stored; {runs} runs of PAN's batch")
        shutil.rmtree(folder, ignore_errors=True)
    return timings


def _copy_history(result: Path, page: Path, store: Path, site: Path, count: int, run_name: str,
                  with_pages: bool) -> None:
    """`count` copies of `result` (and of its page) in `store`, as runs of past hours would have left them."""
    import datetime as dt
    import shutil

    suite, batch = result.parent.parent.parent.name, result.name
    start = dt.datetime(2016, 1, 1)
    for i in range(count):
        run_time = (start + dt.timedelta(hours=i)).strftime("%Y%m%dT%H%M%S.%fZ")
        target = store / suite / run_name / run_time / batch
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result, target)
        if with_pages:
            html = site / "validations" / suite / run_name / run_time / page.name
            html.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, html)


def main(argv: list[str]) -> int:
    if argv[:1] == ["measure"]:
        stored, runs = ([int(a) for a in argv[1:3]] + [3000, 5][len(argv[1:3]):])[:2]
        timings = measure(stored, runs)
        for wall, cpu in timings:
            print(f"action: {wall:.3f} s wall, {cpu:.3f} s CPU")
        walls = sorted(w for w, _ in timings)
        print(f"median {walls[len(walls) // 2]:.3f} s wall")
        return 0
    if argv != ["check"]:
        print(__doc__)
        return 2
    problems = check()
    for problem in problems:
        print(problem)
    print(f"{GX_DIR}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
