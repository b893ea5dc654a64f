"""Each rule's SQL, as its suite states it, on hand-made resolved rows (the shape int_observations__resolved gives)."""
from __future__ import annotations

import json

import duckdb
import pytest

from expectations.rules import RULES_BY_ID, SLICE_KEY_EXACT, SLICE_KEY_HASHED
from expectations.suites import BATCH_TABLES
from expectations.validate import settle_slice_keys
from hmo.settings import PROJECT_ROOT

COLUMNS = ["reporting_country", "period", "flow_type", "border_point", "counterpart_country",
           "sex", "age", "nationality", "count", "obs_status"]


@pytest.fixture(params=["hashed", "exact"])
def con(request):
    """Every rule must give the same answer with either slice key prepare_batches may store."""
    con = duckdb.connect()
    con.execute(f"set variable slice_key = '{request.param}'")
    con.execute("create schema seeds")
    for seed in ("cl_age", "countries"):
        con.execute(
            f"create table seeds.{seed} as select * from read_csv(?, all_varchar = true)",
            [str(PROJECT_ROOT / "dbt_project" / "seeds" / f"{seed}.csv")],
        )
    return con


def batch(con, rows: list[str], inbox: str = "PAN") -> None:
    """rows: 'reporting_country,period,...,count,obs_status' as resolved codes (empty = null)."""
    con.execute(
        "create or replace table validation__pending_observations ("
        "submission_id integer, source_row bigint, inbox_country varchar, "
        + ", ".join(f"{c}_value varchar, {c} varchar" for c in COLUMNS if c not in ("border_point",))
        # a name two countries share: its codes, as int_observations__resolved gives them
        + ", border_point varchar, nationality_ambiguous varchar, counterpart_country_ambiguous varchar)"
    )
    for number, line in enumerate(rows, start=2):
        values = dict(zip(COLUMNS, [v or None for v in line.split(",")]))
        con.execute(
            "insert into validation__pending_observations by name select 1 as submission_id, "
            "? as source_row, ? as inbox_country, "
            + ", ".join(f"?::varchar as {c}_value, ?::varchar as {c}" for c in COLUMNS if c != "border_point")
            + ", ? as border_point",
            [number, inbox] + [x for c in COLUMNS if c != "border_point" for x in (values[c], values[c])]
            + [values["border_point"] or "_T"],
        )
    con.execute("alter table validation__pending_observations alter count type bigint")
    con.execute("alter table validation__pending_observations alter period type date using (period || '-01')::date")
    key = SLICE_KEY_HASHED if con.execute("select getvariable('slice_key')").fetchone()[0] == "hashed" else SLICE_KEY_EXACT
    con.execute(f"create or replace table validation__pending_observations as "
                f"select *, {key} as slice_key from validation__pending_observations")
    # The file suite's batch: the submission the rows belong to (S03 reads its rows).
    con.execute("create or replace table validation__pending_submissions as "
                "select 1 as submission_id, ? as reporting_country", [inbox])


def rule_sql(rule_id: str) -> str:
    rule = RULES_BY_ID[rule_id]
    return rule.sql.replace("{batch}", BATCH_TABLES[rule.target])


def failing(con, rule_id: str) -> list[tuple]:
    sql = rule_sql(rule_id)
    return sorted(con.execute(f"select source_row, column_name, value from ({sql})").fetchall(),
                  key=lambda r: (r[0] or 0, r[1] or ""))


def test_c01_parts_must_add_up_to_a_total_when_complete(con):
    batch(con, [
        "PAN,2024-01,ENTRY,_T,_T,_T,_T,VEN,10,A",
        "PAN,2024-01,ENTRY,_T,_T,F,_T,VEN,4,A",
        "PAN,2024-01,ENTRY,_T,_T,M,_T,VEN,5,A",
    ])
    assert failing(con, "C01") == [(2, "sex", "10")]


def test_c01_incomplete_parts_may_be_less_but_never_more_than_the_total(con):
    batch(con, [
        "PAN,2024-01,ENTRY,_T,_T,_T,_T,_T,10,A",
        "PAN,2024-01,ENTRY,_T,_T,_T,_T,VEN,6,A",
        "PAN,2024-01,ENTRY,_T,_T,_T,Y_LT18,_T,3,A",
    ])
    assert failing(con, "C01") == []
    batch(con, [
        "PAN,2024-01,ENTRY,_T,_T,_T,_T,_T,10,A",
        "PAN,2024-01,ENTRY,_T,_T,_T,_T,VEN,11,A",
    ])
    assert failing(con, "C01") == [(2, "nationality", "10")]


TWO_MONTHS_THAT_ADD_UP = [
    "PAN,2024-01,ENTRY,_T,_T,_T,_T,VEN,10,A",
    "PAN,2024-01,ENTRY,_T,_T,F,_T,VEN,4,A",
    "PAN,2024-01,ENTRY,_T,_T,M,_T,VEN,6,A",
    "PAN,2024-02,ENTRY,_T,_T,_T,_T,VEN,5,A",
    "PAN,2024-02,ENTRY,_T,_T,F,_T,VEN,2,A",
    "PAN,2024-02,ENTRY,_T,_T,M,_T,VEN,3,A",
]


def test_c01_keeps_slices_apart(con):
    batch(con, [*TWO_MONTHS_THAT_ADD_UP, "PAN,2024-02,EXIT,_T,_T,F,_T,VEN,3,A"])
    assert failing(con, "C01") == []
    assert failing(con, "R04") == []


def test_slices_sharing_a_hashed_key_are_told_apart(con):
    batch(con, TWO_MONTHS_THAT_ADD_UP)
    assert not settle_slice_keys(con)
    con.execute("create or replace table validation__pending_observations as "  # as if both hashed alike
                "select * replace (7::ubigint as slice_key) from validation__pending_observations")
    assert settle_slice_keys(con)
    assert failing(con, "C01") == [] and failing(con, "R04") == []


def test_c01_follows_the_age_tree(con):
    batch(con, [
        "PAN,2024-01,ENTRY,_T,_T,_T,Y_LT12,VEN,10,A",
        "PAN,2024-01,ENTRY,_T,_T,_T,Y0T4,VEN,3,A",
        "PAN,2024-01,ENTRY,_T,_T,_T,Y5T11,VEN,6,A",
    ])
    assert failing(con, "C01") == [(2, "age", "10")]


def test_c01_skips_totals_with_suppressed_parts(con):
    batch(con, [
        "PAN,2024-01,ENTRY,_T,_T,_T,_T,VEN,10,A",
        "PAN,2024-01,ENTRY,_T,_T,F,_T,VEN,,Q",
        "PAN,2024-01,ENTRY,_T,_T,M,_T,VEN,5,A",
    ])
    assert failing(con, "C01") == []


def test_c02_compares_marginal_tables_on_their_finest_age_bands(con):
    rows = [
        "PAN,2024-01,ENTRY,_T,_T,_T,_T,VEN,6,A",
        "PAN,2024-01,ENTRY,_T,_T,_T,_T,HTI,4,A",
        "PAN,2024-01,ENTRY,_T,_T,F,Y_LT18,_T,2,A",
        "PAN,2024-01,ENTRY,_T,_T,F,Y_GE18,_T,3,A",
        "PAN,2024-01,ENTRY,_T,_T,M,_T,_T,5,A",
    ]
    batch(con, rows)
    assert failing(con, "C02") == []
    batch(con, rows[:-1] + ["PAN,2024-01,ENTRY,_T,_T,M,_T,_T,6,A"])
    assert [r[2] for r in failing(con, "C02")] == ["10", "11"]
    # The detail names this row's table and every table's total, for receipts to phrase.
    sql = rule_sql("C02")
    details = sorted((json.loads(r[0]) for r in con.execute(f"select detail from ({sql})").fetchall()),
                     key=lambda d: d["cross_section"])
    assert [d["cross_section"] for d in details] == ["nationality", "sex"]
    assert details[0]["totals"] == [{"cross_section": "nationality", "total": 10, "first_row": 2},
                                    {"cross_section": "sex", "total": 11, "first_row": 4}]
    assert details[0]["totals"] == details[1]["totals"]
    assert {k: details[0][k] for k in ("period", "flow_type", "border_point", "counterpart_country")} == {
        "period": "2024-01", "flow_type": "ENTRY", "border_point": "_T", "counterpart_country": "_T"}


def test_r04_names_each_repeated_row(con):
    batch(con, [
        "PAN,2024-01,ENTRY,_T,_T,F,_T,VEN,1,A",
        "PAN,2024-01,ENTRY,_T,_T,F,_T,VEN,2,A",
        "PAN,2024-01,ENTRY,_T,_T,M,_T,VEN,2,A",
    ])
    assert failing(con, "R04") == [(3, "key", None)]
    sql = rule_sql("R04")
    # The first row with the key, as a number: receipts say "same key as row 2" in either language.
    assert con.execute(f"select detail from ({sql})").fetchall() == [("2",)]


def test_r03_allows_an_empty_count_only_when_suppressed(con):
    batch(con, [
        "PAN,2024-01,ENTRY,_T,_T,F,_T,VEN,,Q",
        "PAN,2024-01,ENTRY,_T,_T,M,_T,VEN,,A",
    ])
    assert failing(con, "R03") == [(3, "count", None)]


def test_s03_row_country_must_match_the_folder(con):
    batch(con, ["CRI,2024-01,ENTRY,_T,_T,F,_T,VEN,1,A"])
    assert failing(con, "S03") == [(2, "reporting_country", "CRI")]


def test_s03_reads_the_rows_of_the_files_in_its_batch(con):
    """The file suite's batch is one country's files: rows of files outside it are not its to report."""
    batch(con, ["CRI,2024-01,ENTRY,_T,_T,F,_T,VEN,1,A"])
    con.execute("update validation__pending_submissions set submission_id = 2")
    assert failing(con, "S03") == []


def test_s03_the_folder_must_be_a_reporting_country(con):
    batch(con, ["ZZZ,2024-01,ENTRY,_T,_T,F,_T,VEN,1,A"], inbox="ZZZ")
    assert failing(con, "S03") == [(2, "reporting_country", "ZZZ")]
    batch(con, ["FRA,2024-01,ENTRY,_T,_T,F,_T,VEN,1,A"], inbox="FRA")
    assert failing(con, "S03") == [(2, "reporting_country", "FRA")]


def test_r02_every_required_coded_column_must_be_given(con):
    batch(con, [
        "PAN,2024-01,,_T,_T,F,_T,VEN,1,A",
        ",2024-01,ENTRY,_T,_T,F,_T,VEN,1,A",
        "PAN,2024-01,ENTRY,_T,_T,F,_T,VEN,1,A",
    ])
    assert failing(con, "R02") == [(2, "flow_type", None), (3, "reporting_country", None)]


def test_r02_a_formula_is_not_a_border_point(con):
    batch(con, [
        'PAN,2024-01,ENTRY,=HYPERLINK("http://x"),_T,F,_T,VEN,1,A',
        "PAN,2024-01,ENTRY,=cmd|' /C calc'!A0,_T,M,_T,VEN,1,A",
        "PAN,2024-01,ENTRY,@SUM(1),_T,_U,_T,VEN,1,A",
        "PAN,2024-01,ENTRY,PASO CANOAS,_T,_O,_T,VEN,1,A",
    ])
    assert [row[:2] for row in failing(con, "R02")] == [(2, "border_point"), (3, "border_point"),
                                                        (4, "border_point")]


def test_every_failing_row_is_recorded_past_the_gx_sample(paths):
    """A file with 500 bad counts gets 500 problems in its receipt, not GX's 200."""
    from conftest import STANDARD_HEADER, drop
    from expectations.validate import validate_pending
    from harmonise.dbt import DbtProject
    from ingest.submissions import ingest_inbox
    from hmo.warehouse import connect

    rows = [f"PAN,2024-01,ENTRY,_T,_T,_T,_T,Nowhere {i:03d},-{i},A" for i in range(500)]
    drop(paths, "PAN", "many.csv", STANDARD_HEADER + "\n" + "\n".join(rows) + "\n")
    con = connect(paths.warehouse)
    ingest_inbox(con, paths)
    con.close()
    DbtProject(paths).prepare_validation()
    con = connect(paths.warehouse)
    [verdict] = validate_pending(con)
    assert verdict.status == "rejected"
    counts = dict(con.execute("select rule_id, count(*) from validation.rule_failures group by 1").fetchall())
    assert counts["R02"] == 500
    assert counts["R03"] == 500


def test_s02_names_each_column_missing_or_named_more_than_once():
    con = duckdb.connect()
    con.execute(
        """
        create table validation__pending_submissions as
        select * from (values
            (1, null, ['age', 'nationality=Citizenship'], []),
            (2, null, [], ['count=count|cantidad', 'reporting_country=Pais_Reporte|pais reporte|PAIS REPORTE']),
            (3, 'not a well-formed table', [], ['count=count|count']),
            (4, null, [], [])
        ) as t(submission_id, read_error, missing_columns, duplicate_columns)
        """
    )
    sql = rule_sql("S02")
    assert con.execute(f"select * from ({sql}) order by all").fetchall() == [
        (1, None, "age", None, None),
        (1, None, "nationality", "Citizenship", None),
        (2, None, "count", "count | cantidad", "named more than once / nombrada más de una vez"),
        (2, None, "reporting_country", "Pais_Reporte | pais reporte | PAIS REPORTE",
         "named more than once / nombrada más de una vez"),
    ]
    rule = RULES_BY_ID["S02"]
    assert "named more than once" in rule.message_en and "más de una vez" in rule.message_es
