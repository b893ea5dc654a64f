"""Open and check the GX project in expectations/gx/ (the suites are the rules' only definition).

    python -m expectations.gx_project check     # what make test checks too

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

import json
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
        if not isinstance(formats, dict) or formats.get("result_format") != "COMPLETE" or formats.get(
                "unexpected_index_column_names") != ["submission_id"]:
            problems.append(f"checkpoint {name}: result_format must be COMPLETE with every failing submission_id")
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


def main(argv: list[str]) -> int:
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
