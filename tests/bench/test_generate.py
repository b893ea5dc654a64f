"""The benchmark generator must only ever produce files the warehouse accepts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.generate import (  # noqa: E402
    AGES, BP_OF, GEOGRAPHY, HEADER, HEADER_ES, HEADER_WIDE, MEMBERS, NATIONALITIES, generate,
)

ROWS = 2000
KEY = ["reporting_country", "period", "flow_type", "border_point", "counterpart_country", "sex", "age", "nationality"]
GROUP = KEY[:5]


def _long_from_standard(con: duckdb.DuckDBPyConnection, path: Path, delim: str, encoding: str, names: list[str]) -> None:
    con.execute(
        f"CREATE OR REPLACE TABLE raw AS SELECT * FROM read_csv('{path}', delim='{delim}', header=true, "
        f"all_varchar=true, encoding='{encoding}')"
    )
    assert [c[0] for c in con.execute("DESCRIBE raw").fetchall()] == names
    cols = ", ".join(f'"{a}" AS {b}' for a, b in zip(names, HEADER))
    con.execute(f"CREATE OR REPLACE TABLE t AS SELECT {cols} FROM raw")


def _long_from_wide(con: duckdb.DuckDBPyConnection, path: Path, country: str) -> None:
    con.execute(f"CREATE OR REPLACE TABLE raw AS SELECT * FROM read_csv('{path}', delim=';', header=true, all_varchar=true)")
    assert [c[0] for c in con.execute("DESCRIBE raw").fetchall()] == HEADER_WIDE
    months = ", ".join(f'"{m}"' for m in HEADER_WIDE[7:])
    month_no = " ".join(f"WHEN '{m}' THEN {i}" for i, m in enumerate(HEADER_WIDE[7:], 1))
    con.execute(f"""
        CREATE OR REPLACE TABLE t AS
        SELECT '{country}' AS reporting_country,
               "Año" || '-' || lpad((CASE mes {month_no} END)::VARCHAR, 2, '0') AS period,
               "Tipo" AS flow_type, "Puesto" AS border_point, "Procedencia" AS counterpart_country,
               "Sexo" AS sex, "Edad" AS age, "Nacionalidad" AS nationality, v AS raw_count,
               replace(v, '.', '') AS count, 'A' AS obs_status
        FROM (UNPIVOT raw ON {months} INTO NAME mes VALUE v)""")
    bad = con.execute(r"SELECT count(*) FROM t WHERE NOT regexp_full_match(raw_count, '\d{1,3}(\.\d{3})*')").fetchone()
    assert bad == (0,), "counts must use '.' as thousands separator"
    assert con.execute("SELECT count(*) FROM t WHERE raw_count LIKE '%.%'").fetchone()[0] > 0


def _check_long(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """What the accept path demands of every standard-layout file."""
    key = ", ".join(KEY)
    n, distinct = con.execute(f"SELECT count(*), count(DISTINCT ({key})) FROM t").fetchone()
    assert n == distinct, "the key must be unique"
    assert abs(n - rows) <= rows // 100
    assert con.execute(r"SELECT count(*) FROM t WHERE NOT regexp_full_match(count, '\d+')").fetchone() == (0,)
    con.execute("CREATE OR REPLACE TABLE t AS SELECT * REPLACE (count::BIGINT AS count) FROM t")
    # code lists
    assert {r[0] for r in con.execute("SELECT DISTINCT reporting_country FROM t").fetchall()} <= set(MEMBERS)
    assert {r[0] for r in con.execute("SELECT DISTINCT sex FROM t").fetchall()} <= {"F", "M", "_T"}
    assert {r[0] for r in con.execute("SELECT DISTINCT age FROM t").fetchall()} <= set(AGES)
    nats = {r[0] for r in con.execute("SELECT DISTINCT nationality FROM t").fetchall()}
    assert nats <= set(NATIONALITIES) | {"_U", "_T"}
    assert {r[0] for r in con.execute("SELECT DISTINCT obs_status FROM t").fetchall()} <= {"A", "P", "E"}
    assert con.execute(r"SELECT count(*) FROM t WHERE NOT regexp_full_match(period, '20[0-2]\d-(0[1-9]|1[0-2])') "
                       "OR period > '2026-10'").fetchone() == (0,)
    for country, bp, cp in con.execute(
        "SELECT DISTINCT reporting_country, border_point, counterpart_country FROM t"
    ).fetchall():
        assert bp == "_T" or any(bp == f"{country}-BP{i:02d}" for i in range(1, len(BP_OF[country]) + 1))
        assert cp in ("_U", "_T") or cp in GEOGRAPHY[country][0]
    assert con.execute(
        "SELECT max(n) FROM (SELECT count(DISTINCT flow_type) n FROM t GROUP BY reporting_country)"
    ).fetchone()[0] <= 5
    # both marginal cross-sections in every group, with the same grand total
    groups = ", ".join(GROUP)
    mismatched = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE by_nat IS DISTINCT FROM by_sex_age OR by_nat IS DISTINCT FROM grand)
        FROM (SELECT {groups},
                     sum(count) FILTER (WHERE sex = '_T' AND age = '_T' AND nationality <> '_T') by_nat,
                     sum(count) FILTER (WHERE nationality = '_T' AND sex IN ('F', 'M') AND age <> '_T') by_sex_age,
                     sum(count) FILTER (WHERE nationality = '_T' AND sex = '_T' AND age = '_T') grand
              FROM t GROUP BY ALL)""").fetchone()
    assert mismatched[0] > 0 and mismatched[1] == 0
    # wherever a total and its parts are both present, the parts add up to it
    for dim in ("border_point", "counterpart_country", "sex", "age", "nationality"):
        others = ", ".join(c for c in KEY if c != dim)
        checked, wrong = con.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE total <> parts)
            FROM (SELECT {others}, sum(count) FILTER (WHERE {dim} = '_T') total,
                         sum(count) FILTER (WHERE {dim} <> '_T') parts
                  FROM t GROUP BY ALL)
            WHERE total IS NOT NULL AND parts IS NOT NULL""").fetchone()
        assert wrong == 0, f"{dim}: {wrong} totals differ from the sum of their parts"
        if dim == "nationality":
            assert checked > 0


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int]]:
    out = tmp_path_factory.mktemp("gen")
    return {v: (out / f"{v}.csv", generate(ROWS, out / f"{v}.csv", v)) for v in ("standard", "latin1_es", "wide")}


def test_standard(files: dict[str, tuple[Path, int]]) -> None:
    path, n = files["standard"]
    data = path.read_bytes()
    assert data.startswith((",".join(HEADER) + "\n").encode())
    assert b"\r" not in data and b'"' not in data
    data.decode("utf-8")
    con = duckdb.connect()
    _long_from_standard(con, path, ",", "utf-8", HEADER)
    _check_long(con, ROWS)
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == n


def test_latin1_es(files: dict[str, tuple[Path, int]]) -> None:
    path, n = files["latin1_es"]
    data = path.read_bytes()
    assert data.startswith((";".join(HEADER_ES) + "\r\n").encode("latin-1"))
    assert data.count(b"\n") == data.count(b"\r\n") == n + 1
    assert b"," not in data
    data.decode("latin-1")
    con = duckdb.connect()
    _long_from_standard(con, path, ";", "latin-1", HEADER_ES)
    _check_long(con, ROWS)
    con.execute(f"CREATE TABLE s AS SELECT * FROM read_csv('{files['standard'][0]}', all_varchar=true)")
    assert con.execute("SELECT count(*) FROM (SELECT * FROM s EXCEPT ALL SELECT * REPLACE (count::VARCHAR AS count) "
                       "FROM t)").fetchone() == (0,), "same data as the standard variant"


def test_wide(files: dict[str, tuple[Path, int]]) -> None:
    path, n = files["wide"]
    data = path.read_bytes()
    assert data.startswith((";".join(HEADER_WIDE) + "\n").encode("utf-8"))
    lines = data.decode("utf-8").splitlines()
    assert all(len(line.split(";")) == 19 for line in lines)
    assert len(lines) - 1 == n // 12 and abs(n - ROWS) <= ROWS // 100
    con = duckdb.connect()
    _long_from_wide(con, path, "PAN")
    _check_long(con, ROWS)


def test_cli_one_country_month(tmp_path: Path) -> None:
    out = tmp_path / "pan.csv"
    args = [sys.executable, "-m", "bench.generate", "--rows", str(ROWS), "--out", str(out),
            "--country", "PAN", "--start", "2023-05"]
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    con = duckdb.connect()
    _long_from_standard(con, out, ",", "utf-8", HEADER)
    assert con.execute("SELECT DISTINCT reporting_country, period FROM t").fetchall() == [("PAN", "2023-05")]
    assert con.execute("SELECT count(DISTINCT border_point) FROM t").fetchone()[0] > 1
    _check_long(con, ROWS)


def test_deterministic_and_seeded(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{x}.csv" for x in "abc")
    generate(500, a, seed=7)
    generate(500, b, seed=7)
    generate(500, c, seed=8)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_nationalities_are_assigned_iso_codes() -> None:
    assert len(NATIONALITIES) == len(set(NATIONALITIES)) >= 200
    assert all(re.fullmatch("[A-Z]{3}", c) for c in NATIONALITIES)
    iso = Path("/usr/share/iso-codes/json/iso_3166-1.json")
    if iso.exists():
        import json

        assigned = {c["alpha_3"] for c in json.loads(iso.read_text())["3166-1"]}
        assert set(NATIONALITIES) <= assigned
        assert {n for nbs, _, _ in GEOGRAPHY.values() for n in nbs} <= assigned


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(100, tmp_path / "x.csv", variant="xml")
    with pytest.raises(ValueError):
        generate(100, tmp_path / "x.csv", country="FRA")
    with pytest.raises(ValueError):
        generate(100, tmp_path / "x.csv", start="2027-01")
