"""Flow tables for the suppression benchmark and tests: one flow's nationality x sex x age table with
every total, as a country that sends the full cross-classification would, or its marginal tables only."""
from __future__ import annotations

import numpy as np
import pandas as pd

AGES = {"_T": None, "Y_LT18": "_T", "Y_GE18": "_T", "Y_LT12": "Y_LT18", "Y12T17": "Y_LT18",
        "Y0T4": "Y_LT12", "Y5T11": "Y_LT12", "Y18T59": "Y_GE18", "Y_GE60": "Y_GE18"}
AGE_LEAVES = [code for code in AGES if code not in AGES.values()]
SEXES = ("F", "M")


def cross_table(nationalities: int, seed: int = 1, size: float = 3.9) -> pd.DataFrame:
    """Cells of nationality x sex x age with all the totals (aggregated from the leaves, so they add up).
    `size` is the log of a nationality's typical count: 3.9 gives 3-5 % sensitive cells."""
    rng = np.random.default_rng(seed)
    leaves = []
    for n in range(nationalities):
        scale = rng.lognormal(size, 1.3)
        for sex in SEXES:
            for age in AGE_LEAVES:
                leaves.append((f"N{n:03d}", sex, age, int(rng.poisson(scale * rng.uniform(0.2, 1.0)))))
    frame = pd.DataFrame(leaves, columns=["nationality", "sex", "age", "count"])
    ancestry = pd.DataFrame([(leaf, node) for leaf in AGE_LEAVES for node in _lineage(leaf)],
                            columns=["age", "node"])
    with_ages = frame.merge(ancestry, on="age").drop(columns="age").rename(columns={"node": "age"})
    parts = []
    for nationality_total in (False, True):
        for sex_total in (False, True):
            grouped = with_ages.copy()
            if nationality_total:
                grouped["nationality"] = "_T"
            if sex_total:
                grouped["sex"] = "_T"
            parts.append(grouped.groupby(["nationality", "sex", "age"], as_index=False)["count"].sum())
    cells = pd.concat(parts, ignore_index=True)
    cells["border_point"] = "_T"
    cells["counterpart_country"] = "_T"
    return cells


def marginal_tables(nationalities: int, seed: int = 1, size: float = 3.9) -> pd.DataFrame:
    """The same flow as a country with marginal tables only sends it: by nationality and sex, and by sex and
    age, separately; they meet in the totals by sex and the grand total."""
    cells = cross_table(nationalities, seed, size)
    by_nationality_sex = cells["age"] == "_T"
    by_sex_age = cells["nationality"] == "_T"
    return cells[by_nationality_sex | by_sex_age].reset_index(drop=True)


def _lineage(age: str) -> list[str]:
    chain: list[str] = []
    code: str | None = age
    while code is not None:
        chain.append(code)
        code = AGES[code]
    return chain
