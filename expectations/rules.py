"""The rules of DATA_STANDARD.md §6 as the Great Expectations suites state them.

The suites in expectations/gx/expectations/ are the rules' only definition:
each expectation carries its rule id and bilingual message in `meta`, GX's
`severity`, and, for an UnexpectedRowsExpectation, the SQL that selects the
offending rows of `{batch}` as (submission_id, source_row, column_name, value,
detail). This module reads those files as plain JSON, without importing GX, so
that receipts and the report name and phrase the rules without paying for it.

The names below describe what the suites' SQL and the pending batches assume
(expectations/validate.py builds the batch with SLICE_KEY_*); tests check that
the suites agree with them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

Severity = Literal["error", "warning"]
Target = Literal["submissions", "observations", "marts"]

GX_DIR = Path(__file__).resolve().parent / "gx"
# One suite per level of the standard (§6), in the order a receipt lists them.
SUITES = {"file": "standard_file", "row": "standard_row", "consistency": "standard_consistency"}
# GX's severity -> the verdict's: an error rejects the file, a warning is reported.
SEVERITIES: dict[str, Severity] = {"critical": "error", "warning": "warning"}

CODED_COLUMNS = ["reporting_country", "flow_type", "counterpart_country", "sex", "age", "nationality",
                 "obs_status"]
# Required by the standard (§2) and coded: an empty cell is an R02 failure too,
# so that no published row ever lacks one of them.
REQUIRED_CODED = ["reporting_country", "flow_type", "sex", "age", "nationality"]
# A name two countries share stays unresolved with its candidates in <column>_ambiguous.
NAME_COLUMNS = ["counterpart_country", "nationality"]
# A cell a spreadsheet would run as a formula (OWASP's list): never a border-point code.
FORMULA_LIKE = r"^[=+@\t\r-]"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    severity: Severity
    target: Target  # the batch its suite validates
    message_en: str
    message_es: str
    sql: str  # its UnexpectedRowsExpectation's query; "" for a rule checked by built-in expectations


SLICE = ["reporting_country", "period", "flow_type", "border_point", "counterpart_country"]
_AS_SUBMITTED = {
    "reporting_country": "coalesce(reporting_country, reporting_country_value)",
    "period": "coalesce(period::varchar, period_value)",
    "flow_type": "coalesce(flow_type, flow_type_value)", "border_point": "border_point",
    "counterpart_country": "coalesce(counterpart_country, counterpart_country_value)",
    "sex": "coalesce(sex, sex_value)", "age": "coalesce(age, age_value)",
    "nationality": "coalesce(nationality, nationality_value)",
}
# The batch carries each row's slice (its submission and SLICE columns, codes
# or, where unresolved, the values as submitted) as one `slice_key` column, so
# the rules group and join on it instead of five text columns: at 10M rows that
# halves C01 and C02, whose hash tables otherwise outgrow the memory limit
# (docs/benchmarks.md). The key is a 64-bit hash; prepare_batches checks that
# no two slices of the batch share one and else falls back to the exact key.
SLICE_KEY_HASHED = f"hash(submission_id, {', '.join(_AS_SUBMITTED[c] for c in SLICE)})"
SLICE_KEY_EXACT = f"struct_pack(submission_id, {', '.join(f'{c} := {_AS_SUBMITTED[c]}' for c in SLICE)})"


def load_rules(gx_dir: Path = GX_DIR) -> list[Rule]:
    """One Rule per rule id, from the suite files (a rule may take several expectations, as S01 does)."""
    targets: dict[str, Target] = {}
    for path in sorted((gx_dir / "validation_definitions").glob("*.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        asset = definition["data"]["asset"]["name"]
        if asset not in ("submissions", "observations"):
            raise ValueError(f"{path.name}: validates {asset!r}, not a batch of the pipeline")
        targets[definition["suite"]["name"]] = cast(Target, asset)
    rules: dict[str, Rule] = {}
    for suite_name in SUITES.values():
        suite = json.loads((gx_dir / "expectations" / f"{suite_name}.json").read_text(encoding="utf-8"))
        for expectation in suite["expectations"]:
            meta = expectation["meta"]
            rule = Rule(meta["rule_id"], SEVERITIES[expectation.get("severity", "critical")],
                        targets[suite_name], meta["message_en"], meta["message_es"],
                        expectation["kwargs"].get("unexpected_rows_query", ""))
            earlier = rules.get(rule.rule_id)
            if earlier is not None:
                if (earlier.severity, earlier.target, earlier.message_en, earlier.message_es) != (
                        rule.severity, rule.target, rule.message_en, rule.message_es):
                    raise ValueError(f"{suite_name}: the expectations of {rule.rule_id} disagree on what it is")
                if earlier.sql and rule.sql:
                    raise ValueError(f"{suite_name}: {rule.rule_id} has two queries; one rule, one query")
                rule = earlier if earlier.sql else rule
            rules[rule.rule_id] = rule
    return list(rules.values())


RULES: list[Rule] = load_rules()

# Not a rule of the standard: the marts' own dbt tests, run after the suites
# (harmonise/audit.py). It names a submission whose rows got past the suites
# and broke a harmonised table, so the file is rejected rather than published.
A01 = Rule("A01", "error", "marts",
           "These rows broke a check of the harmonised tables (detail: the check); the file was not published. "
           "The Observatory has been told; correct the value or ask the Observatory.",
           "Estas filas no pasaron un control de las tablas armonizadas (detalle: el control); el archivo no se "
           "publicó. El Observatorio fue informado; corrija el valor o consulte al Observatorio.",
           "")

RULES_BY_ID = {rule.rule_id: rule for rule in [*RULES, A01]}
