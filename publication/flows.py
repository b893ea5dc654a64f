"""The published flows (`pub_flows`): fct_flows with the confidential counts suppressed, each table checked by
the attacker before it is returned (write, audit, publish: a table that fails is never written)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from publication.suppression import (DIMENSIONS, SuppressionFailed, attack, build_table, exposed, suppress)

SLICE = ("reporting_country", "period", "flow_type")
DEFAULT_THRESHOLD = 5
SUPPRESSED = "Q"  # CL_OBS_STATUS: suppressed


@dataclass
class Published:
    flows: pd.DataFrame
    tables: int = 0
    attacked: int = 0  # hidden cells whose interval the attacker computed (all held, or nothing is returned)


def publish_flows(flows: pd.DataFrame, age_parents: Mapping[str, str | None],
                  thresholds: Mapping[str, int] | None = None) -> Published:
    """Suppress and check every (country, period, flow type) table of `flows` (fct_flows' columns).

    A count the source left out (`count` empty, status Q: IRCC's `--`) is not a cell of the table: the
    source's own totals exclude it, so it adds nothing a reader could subtract.
    """
    thresholds = thresholds or {}
    published = flows.copy()
    published["count"] = published["count"].astype("Int64")
    result = Published(published)
    if flows.empty:
        return result
    given = flows["count"].notna().to_numpy()
    hidden = np.zeros(len(flows), dtype=bool)
    for key, positions in flows[given].groupby(list(SLICE), sort=False).indices.items():
        rows = np.flatnonzero(given)[positions]
        threshold = thresholds.get(str(key[0]), DEFAULT_THRESHOLD)
        table = build_table(flows.iloc[rows], {"age": age_parents}, DIMENSIONS)
        suppression = suppress(table, threshold)
        found = attack(table, suppression.suppressed)
        weak = exposed(table, suppression, found, threshold)
        if weak.any():
            cells = "; ".join(table.describe(c) for c in np.flatnonzero(weak)[:5])
            raise SuppressionFailed(
                f"{'/'.join(map(str, key))}: the attacker pins down {int(weak.sum())} suppressed cell(s) "
                f"({cells}); nothing was published")
        hidden[rows[suppression.suppressed]] = True
        result.tables += 1
        result.attacked += int(suppression.suppressed.sum())
    published.loc[hidden, "count"] = pd.NA
    published.loc[hidden, "obs_status"] = SUPPRESSED
    return result
