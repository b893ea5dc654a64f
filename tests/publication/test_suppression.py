"""Secondary suppression holds against the attacker, who breaks a naive suppression of the same tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.publication import naive
from bench.tables import AGES, cross_table, marginal_tables
from publication.flows import publish_flows
from publication.suppression import (DIMENSIONS, Suppression, Table, attack, build_table, exposed, primary,
                                     suppress)

THRESHOLD = 5


def broken(table: Table, hidden: np.ndarray) -> int:
    """How many hidden cells the attacker pins down."""
    pattern = Suppression(hidden, primary(table, THRESHOLD), 0)
    return int(exposed(table, pattern, attack(table, hidden), THRESHOLD).sum())


def cells(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["nationality", "sex", "count"])
    for dim in DIMENSIONS:
        if dim not in frame:
            frame[dim] = "_T"
    return frame


def small_table() -> pd.DataFrame:
    """Nationality x sex with its totals; VEN's women (2) and HTI's men (3) are sensitive."""
    body = {("VEN", "F"): 2, ("VEN", "M"): 40, ("HTI", "F"): 25, ("HTI", "M"): 3,
            ("ECU", "F"): 30, ("ECU", "M"): 28, ("COL", "F"): 12, ("COL", "M"): 17}
    rows = [(n, s, c) for (n, s), c in body.items()]
    for n in ("VEN", "HTI", "ECU", "COL"):
        rows.append((n, "_T", body[(n, "F")] + body[(n, "M")]))
    for s in ("F", "M"):
        rows.append(("_T", s, sum(c for (_, t), c in body.items() if t == s)))
    rows.append(("_T", "_T", sum(body.values())))
    return cells(rows)


def test_the_attacker_recovers_a_naively_suppressed_cell_and_no_cell_of_ours():
    table = build_table(small_table())
    assert broken(table, naive(table)) > 0
    ours = suppress(table, THRESHOLD)
    found = attack(table, ours.suppressed)
    assert not exposed(table, ours, found, THRESHOLD).any()
    ven_women = int(np.flatnonzero((table.codes[:, 4] == 0) & (table.codes[:, 2] == 0))[0])
    assert table.describe(ven_women).endswith("sex=F, age=_T, nationality=VEN")
    assert found.lower[ven_women] == 0 and found.upper[ven_women] >= 2 + THRESHOLD


@pytest.mark.parametrize("make", [cross_table, marginal_tables], ids=["crossed", "marginal tables"])
def test_generated_tables_of_ten_thousand_cells_hold(make):
    # Marginal tables get smaller counts so that their nationality margin has sensitive cells too.
    flow = make(370) if make is cross_table else make(3300, size=2.6)
    table = build_table(flow, {"age": AGES})
    share = primary(table, THRESHOLD).mean()
    assert table.size >= 9_000 and 0.03 <= share <= 0.06, (table.size, share)
    assert broken(table, naive(table)) > 0
    ours = suppress(table, THRESHOLD)
    found = attack(table, ours.suppressed)
    weak = exposed(table, ours, found, THRESHOLD)
    assert ours.suppressed.sum() > ours.primary.sum() and not weak.any()


def test_parts_short_of_their_total_are_only_an_upper_bound():
    # The counts of _O and _U were not sent: the parts add up to less than the total, so nothing can be
    # subtracted from it, and the one sensitive cell needs no partner.
    table = build_table(cells([("VEN", "_T", 50), ("HTI", "_T", 3), ("_T", "_T", 90)]))
    ours = suppress(table, THRESHOLD)
    assert ours.suppressed.sum() == 1
    assert not exposed(table, ours, attack(table, ours.suppressed), THRESHOLD).any()


def test_published_flows_hide_counts_below_the_countrys_threshold_and_keep_the_sources_own_gaps():
    flow = small_table()
    flow["reporting_country"], flow["period"], flow["flow_type"] = "PAN", pd.Timestamp("2024-01-01"), "ENTRY"
    flow["obs_status"] = "A"
    flow["count"] = flow["count"].astype("Int64")
    gap = flow.iloc[[0]].assign(nationality="XXB", sex="_T", count=pd.NA, obs_status="Q")  # IRCC's "--"
    flow = pd.concat([flow, gap], ignore_index=True)
    ages = {code: parent for code, parent in AGES.items()}
    default = publish_flows(flow, ages).flows
    assert default["count"].dropna().between(1, 4).sum() == 0
    assert (default["obs_status"] == "Q").sum() > 3
    assert default.iloc[-1]["obs_status"] == "Q" and pd.isna(default.iloc[-1]["count"])
    stricter = publish_flows(flow, ages, {"PAN": 13}).flows
    assert stricter["count"].dropna().between(1, 12).sum() == 0
    lenient = publish_flows(flow, ages, {"PAN": 3, "CRI": 13}).flows  # another country's threshold is not PAN's
    assert lenient["count"].dropna().between(1, 2).sum() == 0
    assert (lenient["obs_status"] == "Q").sum() < (default["obs_status"] == "Q").sum()
