"""`hmo aliases add` and `hmo revalidate`: a rejected file accepted without a new drop."""
from __future__ import annotations

import shutil

import duckdb

from conftest import STANDARD_HEADER, drop
from flows import stages
from flows.cli import main
from hmo import events

# Colombia writes "Guyane" (French Guiana in French, Guyana in IRCC's French
# labels): ambiguous without Colombia's own alias.
FILE = STANDARD_HEADER + "\nCOL,2024-01,ENTRY,_T,_T,_T,_T,Guyane,7,A\nCOL,2024-01,ENTRY,_T,_T,_T,_T,VEN,5,A\n"


def rows(path, sql, params=()):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_alias_then_revalidate_accepts_the_rejected_file_and_a_rebuild_keeps_it(paths, capsys, monkeypatch):
    drop(paths, "COL", "entradas_2024_01.csv", FILE)
    [rejected] = stages.run(paths).verdicts
    assert rejected.status == "rejected" and rejected.rules_failed == ["R02"]
    assert main(["status"]) == 0
    q03 = capsys.readouterr().out.split("source values that did not map (Q03):")[1]
    assert "Guyane" in q03 and "GUF,GUY" in q03 and "VEN" not in q03

    monkeypatch.setenv("HMO_USER", "ana.perez@migracion.gov.co")
    assert main(["aliases", "add", "COL", "Guyane", "GUF"]) == 0
    out = capsys.readouterr().out
    assert "COL writes 'Guyane' for GUF (by ana.perez@migracion.gov.co" in out
    assert f"hmo revalidate {rejected.submission_id}" in out
    line = (paths.aliases / "COL.csv").read_text(encoding="utf-8").splitlines()[1]
    assert line.startswith("Guyane,GUF,requested by ana.perez@migracion.gov.co")

    assert main(["revalidate", str(rejected.submission_id)]) == 0
    out = capsys.readouterr().out
    assert f"submission {rejected.submission_id} received again from the archive as submission" in out
    statuses = rows(paths.warehouse, "select submission_id, status from marts.fct_submissions order by 1")
    assert statuses == [(rejected.submission_id, "rejected"), (rejected.submission_id + 1, "accepted")]
    assert rows(paths.published, "select nationality, count from marts.fct_flows order by 1") == [
        ("GUF", 7), ("VEN", 5)]
    receipts = sorted(p.name for p in (paths.outbox / "COL").glob("*.txt"))
    assert receipts == [f"entradas_2024_01.csv.{rejected.submission_id}.rejected.txt",
                        f"entradas_2024_01.csv.{rejected.submission_id + 1}.accepted.txt"]
    assert main(["status"]) == 0
    assert "(Q03)" not in capsys.readouterr().out  # the name maps now
    accepted = (paths.outbox / "COL" / receipts[1]).read_text(encoding="utf-8")
    assert f"nueva validación del envío {rejected.submission_id}" in accepted

    kinds = [event["kind"] for event in events.read_all(paths)]
    assert kinds.count("alias_added") == 1 and kinds.count("received") == 2

    # The alias file lost, the warehouse rebuilt: the event log gives both back.
    shutil.rmtree(paths.aliases)
    assert main(["rebuild"]) == 0
    assert "Guyane,GUF" in (paths.aliases / "COL.csv").read_text(encoding="utf-8")
    assert rows(paths.warehouse, "select submission_id, status from marts.fct_submissions order by 1") == statuses
    assert rows(paths.published, "select nationality, count from marts.fct_flows order by 1") == [
        ("GUF", 7), ("VEN", 5)]


def test_an_alias_never_changes_what_a_name_already_means(paths, capsys):
    drop(paths, "COL", "entradas.csv", STANDARD_HEADER + "\nCOL,2024-01,ENTRY,_T,_T,_T,_T,VEN,5,A\n")
    stages.run(paths)
    capsys.readouterr()
    assert main(["aliases", "add", "COL", "Venezuela", "COL"]) == 1
    assert "already resolves to VEN" in capsys.readouterr().err
    assert main(["aliases", "add", "COL", "Guyane", "BRA"]) == 1
    assert "is a name of GUF and GUY, not of BRA" in capsys.readouterr().err
    assert main(["aliases", "add", "COL", "Narnia", "NRN"]) == 1
    assert "NRN is not a code" in capsys.readouterr().err
    assert main(["aliases", "add", "FRA", "Guyane", "GUF"]) == 1
    assert "FRA is not a reporting country" in capsys.readouterr().err
    assert not (paths.aliases / "COL.csv").exists()
    assert main(["revalidate", "1"]) == 1
    assert "is accepted, not rejected" in capsys.readouterr().err
