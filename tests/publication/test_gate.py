"""Publication is a gate: a table the attacker breaks fails the build, and the last publication stays."""
from __future__ import annotations

import duckdb

from conftest import STANDARD_HEADER, drop
from flows import stages
from publication import flows as publication_flows
from publication.suppression import Suppression, primary

SMALL = STANDARD_HEADER + "".join(  # three Haitians among 43: the total gives them away unless more is hidden
    f"\nCRI,2024-03,ENTRY,_T,_T,_T,_T,{nationality},{count},A"
    for nationality, count in (("HTI", 3), ("VEN", 25), ("NIC", 15), ("_T", 43)))


def _public(paths) -> list[tuple]:
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        return con.execute("select reporting_country, period, nationality, count, obs_status "
                           "from publication.pub_flows order by all").fetchall()
    finally:
        con.close()


def test_a_table_the_attacker_breaks_publishes_nothing_and_the_next_good_build_publishes_it(paths, monkeypatch):
    drop(paths, "CRI", "febrero.csv", STANDARD_HEADER + "\nCRI,2024-02,ENTRY,_T,_T,_T,_T,VEN,120,A"
                                                         "\nCRI,2024-02,ENTRY,_T,_T,_T,_T,NIC,80,A")
    assert stages.run(paths).failure is None
    before = _public(paths)
    assert [row[3] for row in before] == [80, 120]

    # A suppression that hides only the small counts: the attacker works HTI out as 43 - 25 - 15.
    def primary_only(table, threshold):
        sensitive = primary(table, threshold)
        return Suppression(sensitive, sensitive, 0)

    monkeypatch.setattr(publication_flows, "suppress", primary_only)
    drop(paths, "CRI", "marzo.csv", SMALL)
    summary = stages.run(paths)
    assert summary.failure is not None and "the attacker pins down 1 suppressed cell" in summary.failure
    assert summary.published is None
    assert _public(paths) == before  # readers still see the last good publication, not half of this one

    monkeypatch.undo()
    assert stages.run(paths).failure is None
    march = [row for row in _public(paths) if str(row[1]) == "2024-03-01"]
    assert len(march) == 4 and all(status == "Q" for *_, count, status in march if count is None)
    assert sum(count is None for *_, count, _ in march) >= 2  # HTI and a cell that protects it
