"""Synthetic, always-valid submissions for benchmarking the accept path.

Benchmarks need files that look like real country submissions (skewed
nationalities, many border points, marginal tables) yet pass every check, so
that timings measure loading rather than rejection.  Every row of a group is
derived from one Poisson cube (nationality x sex x age band), which makes the
by-nationality and by-sex-and-age cross-sections, their grand total and the
optional detail rows add up exactly.  Totals over border point or counterpart
are never mixed with their parts in one (country, period, flow), so no other
hierarchy can disagree.  All randomness comes from one seeded generator and
rows are produced per chunk of groups with numpy and written by pyarrow, so
the same arguments always give the same bytes, quickly.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

MEMBERS = (
    "BLZ CAN CRI DOM SLV GTM HND MEX NIC PAN USA "
    "ARG BOL BRA CHL COL ECU GUY PRY PER SUR URY VEN"
).split()
FLOWS = ["ENTRY", "EXIT", "IRREGULAR_TRANSIT", "ENCOUNTER", "RETURN", "RESIDENCE_PERMIT"]
SEXES = ["F", "M", "_T"]
AGES = ["Y0T4", "Y5T11", "Y12T17", "Y18T59", "Y_GE60", "_U", "_T"]
STATUSES = ["A", "P", "E"]
VARIANTS = ("standard", "latin1_es", "wide")
HEADER = [
    "reporting_country", "period", "flow_type", "border_point", "counterpart_country",
    "sex", "age", "nationality", "count", "obs_status",
]
HEADER_ES = [
    "pais_reporte", "periodo", "tipo_flujo", "punto_fronterizo", "pais_contraparte",
    "sexo", "edad", "nacionalidad", "cantidad", "estado_obs",
]
MONTHS_ES = [
    "Enero", "Febrero", "Marzo", "Abril", "Mayo", "Junio", "Julio", "Agosto",
    "Septiembre", "Octubre", "Noviembre", "Diciembre",
]
HEADER_WIDE = ["Año", "Tipo", "Puesto", "Procedencia", "Sexo", "Edad", "Nacionalidad", *MONTHS_ES]
WIDE_DEFAULT_COUNTRY = "PAN"  # the wide layout has no country column

# Assigned ISO 3166-1 alpha-3 codes, most frequent first: the position is the Zipf rank.
NATIONALITIES = """
VEN HTI COL ECU CUB NIC HND GTM MEX CHN IND USA BRA PER SLV DOM ARG CHL BOL CAN ESP AFG UZB NPL
SEN BGD CMR GHA TUR RUS PAK NGA AGO PRY URY PAN CRI BLZ GUY SUR JAM FRA DEU ITA GBR PRT ABW ALB
AND ARE ARM ATG AUS AUT AZE BDI BEL BEN BFA BGR BHR BHS BIH BLR BMU BRB BRN BTN BWA CAF CHE CIV
COD COG COM CPV CUW CYM CYP CZE DJI DMA DNK DZA EGY ERI EST ETH FIN FJI FSM GAB GEO GIN GMB GNB
GNQ GRC GRD GRL GUF HKG HRV HUN IDN IRL IRN IRQ ISL ISR JOR JPN KAZ KEN KGZ KHM KIR KNA KOR KWT
LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAR MCO MDA MDG MDV MHL MKD MLI MLT MMR MNE MNG
MOZ MRT MUS MWI MYS NAM NER NLD NOR NRU NZL OMN PHL PLW PNG POL PRI PRK PSE QAT ROU RWA SAU SDN
SGP SLB SLE SMR SOM SRB SSD STP SVK SVN SWE SWZ SYC SYR TCD TGO THA TJK TKM TLS TON TTO TUN TUV
TWN TZA UGA UKR VCT VIR VNM VUT WSM YEM ZAF ZMB ZWE
""".split()
NAT_CODES = NATIONALITIES + ["_U", "_T"]
N_NAT = len(NATIONALITIES) + 1  # selectable: the countries and _U
NAT_T = N_NAT

# Land neighbours and how many crossings each border has; then airports, seaports.
GEOGRAPHY: dict[str, tuple[dict[str, int], int, int]] = {
    "BLZ": ({"MEX": 2, "GTM": 3}, 1, 1),
    "CAN": ({"USA": 12}, 6, 3),
    "CRI": ({"NIC": 3, "PAN": 3}, 2, 2),
    "DOM": ({"HTI": 4}, 4, 2),
    "SLV": ({"GTM": 4, "HND": 3}, 1, 1),
    "GTM": ({"MEX": 6, "BLZ": 2, "HND": 3, "SLV": 4}, 2, 2),
    "HND": ({"GTM": 3, "SLV": 3, "NIC": 4}, 3, 2),
    "MEX": ({"USA": 14, "GTM": 5, "BLZ": 2}, 8, 4),
    "NIC": ({"HND": 4, "CRI": 3}, 1, 1),
    "PAN": ({"CRI": 3, "COL": 2}, 3, 3),
    "USA": ({"CAN": 12, "MEX": 16}, 10, 5),
    "ARG": ({"CHL": 6, "BOL": 3, "PRY": 4, "BRA": 4, "URY": 3}, 5, 2),
    "BOL": ({"BRA": 3, "PRY": 1, "ARG": 3, "CHL": 3, "PER": 3}, 3, 0),
    "BRA": ({"URY": 4, "ARG": 4, "PRY": 3, "BOL": 3, "PER": 2, "COL": 1, "VEN": 2,
             "GUY": 1, "SUR": 1, "GUF": 1}, 8, 4),
    "CHL": ({"PER": 2, "BOL": 3, "ARG": 6}, 4, 3),
    "COL": ({"PAN": 2, "VEN": 6, "BRA": 1, "PER": 1, "ECU": 3}, 6, 3),
    "ECU": ({"COL": 3, "PER": 3}, 3, 2),
    "GUY": ({"VEN": 1, "BRA": 2, "SUR": 2}, 2, 1),
    "PRY": ({"ARG": 4, "BOL": 2, "BRA": 3}, 2, 1),
    "PER": ({"ECU": 3, "COL": 1, "BRA": 2, "BOL": 3, "CHL": 2}, 4, 2),
    "SUR": ({"GUY": 2, "BRA": 1, "GUF": 2}, 1, 1),
    "URY": ({"BRA": 4, "ARG": 3}, 2, 2),
    "VEN": ({"COL": 6, "BRA": 2, "GUY": 1}, 3, 2),
}
# Monthly border crossings (all flows) the synthetic counts are scaled to.
SCALE = {
    "USA": 8e6, "MEX": 3e6, "CAN": 2e6, "BRA": 8e5, "DOM": 7e5, "ARG": 6e5, "COL": 6e5,
    "CHL": 4e5, "PER": 4e5, "CRI": 3e5, "PAN": 2.5e5, "ECU": 2e5, "URY": 2e5, "GTM": 1.5e5,
    "SLV": 1e5, "HND": 1e5, "BOL": 8e4, "PRY": 8e4, "NIC": 6e4, "VEN": 5e4, "BLZ": 4e4,
    "GUY": 2e4, "SUR": 1.5e4,
}
FLOW_SHARE = np.array([0.45, 0.45, 0.04, 0.03, 0.01, 0.02])
FLOW_ROWS = np.array([1.0, 0.9, 0.6, 0.6, 0.4, 1.0])  # relative detail of each flow's reporting
MALE_SHARE = np.array([0.52, 0.52, 0.60, 0.66, 0.72, 0.50])
AGE_SHARE = np.array([  # Y0T4 Y5T11 Y12T17 Y18T59 Y_GE60 _U, per flow
    [0.04, 0.06, 0.05, 0.72, 0.13, 0.02],
    [0.04, 0.06, 0.05, 0.72, 0.13, 0.02],
    [0.10, 0.11, 0.07, 0.69, 0.03, 0.03],
    [0.07, 0.09, 0.08, 0.74, 0.02, 0.03],
    [0.02, 0.04, 0.06, 0.85, 0.03, 0.02],
    [0.05, 0.08, 0.07, 0.72, 0.08, 0.02],
])
TRANSIT = {"PAN", "CRI", "NIC", "HND", "GTM", "COL", "ECU", "SLV", "BLZ"}

FIRST_PERIOD, LAST_PERIOD = 2000 * 12, 2026 * 12 + 9  # 2000-01 .. 2026-10, as year*12+month-1
PERIODS = [f"{p // 12:04d}-{p % 12 + 1:02d}" for p in range(FIRST_PERIOD, LAST_PERIOD + 1)]
MIN_GROUP = 12  # one nationality row, ten sex-by-age rows, the grand total
CAP = (N_NAT + 1) * 11  # rows of the largest five-band group with detail
FILL_MULTI, FILL_SINGLE = 0.05, 0.5  # share of a period's capacity to use before the next
CHUNK_CELLS, CHUNK_GROUPS = 2_000_000, 4096  # bound the memory of one chunk


def _border_points() -> tuple[list[str], dict[str, list[tuple[int, str, int]]]]:
    """Codes of all border points, and per country (code index, counterpart, kind)."""
    codes: list[str] = []
    per: dict[str, list[tuple[int, str, int]]] = {}
    for c in MEMBERS:
        land, air, sea = GEOGRAPHY[c]
        slots = [(nb, 0) for nb, n in land.items() for _ in range(n)]
        slots += [("_T", 1)] * air + [("_U", 2)] * sea
        per[c] = []
        for i, (cp, kind) in enumerate(slots, 1):
            per[c].append((len(codes), cp, kind))
            codes.append(f"{c}-BP{i:02d}")
    return codes + ["_T"], per


BP_CODES, BP_OF = _border_points()
CP_CODES = sorted({nb for land, _, _ in GEOGRAPHY.values() for nb in land}) + ["_U", "_T"]


@dataclass(frozen=True)
class _Stream:
    """One (country, flow) series; its slots are the groups it may report per period."""

    country: int
    flow: int
    bp: np.ndarray
    cp: np.ndarray
    logw: np.ndarray
    p_detail: float


def _flows(c: str) -> list[int]:
    if c in ("USA", "CAN"):
        drop = "IRREGULAR_TRANSIT"
    elif c == "MEX":
        drop = "RESIDENCE_PERMIT"
    elif c in TRANSIT:
        drop = "ENCOUNTER"
    else:
        drop = "IRREGULAR_TRANSIT"
    return [i for i, f in enumerate(FLOWS) if f != drop]


def _streams(rng: np.random.Generator, countries: list[str]) -> list[_Stream]:
    out = []
    for c in countries:
        bps = BP_OF[c]
        bp_w = rng.normal(0, 0.8, len(bps))
        p_detail = float(rng.choice([0.1, 0.3, 0.6]))
        for f in _flows(c):
            mode = "B" if FLOWS[f] == "RESIDENCE_PERMIT" else rng.choice(["A", "B", "C"], p=[0.8, 0.08, 0.12])
            if mode == "A":
                want = {"ENTRY": (0, 1, 2), "EXIT": (0, 1, 2), "RETURN": (0, 1)}.get(FLOWS[f], (0,))
                sel = [i for i, (_, _, k) in enumerate(bps) if k in want]
                bp = np.array([bps[i][0] for i in sel])
                cp = np.array([CP_CODES.index(bps[i][1]) for i in sel])
                logw = bp_w[sel] + np.array([0.0, 1.5, -0.5])[[bps[i][2] for i in sel]]  # airports busiest
            elif mode == "C":
                nbs = list(GEOGRAPHY[c][0]) + ["_U"]
                bp = np.full(len(nbs), len(BP_CODES) - 1)
                cp = np.array([CP_CODES.index(n) for n in nbs])
                logw = rng.normal(0, 0.5, len(nbs)) - 1.5 * (cp == CP_CODES.index("_U"))
            else:
                bp, cp = np.array([len(BP_CODES) - 1]), np.array([len(CP_CODES) - 1])
                logw = np.zeros(1)
            out.append(_Stream(MEMBERS.index(c), f, bp, cp, logw, p_detail))
    return out


def _period_order(start: int, wide: bool) -> list[int]:
    """Periods (or years, for wide) from start to the end of the range, then wrapping."""
    if wide:
        first, last, s = FIRST_PERIOD // 12, LAST_PERIOD // 12 - 1, start // 12
    else:
        first, last, s = FIRST_PERIOD, LAST_PERIOD, start
    return list(range(s, last + 1)) + list(range(first, s))


def _plan(rng: np.random.Generator, rows: int, countries: list[str], start: int, wide: bool) -> dict[str, np.ndarray]:
    """Choose the groups and their sizes so that they hold exactly `rows` rows."""
    streams = _streams(rng, countries)
    caps = np.array([len(s.bp) * CAP * FLOW_ROWS[s.flow] for s in streams])
    periods = _period_order(start, wide)
    fill = FILL_SINGLE if len(countries) == 1 else FILL_MULTI
    n_per = min(len(periods), max(1, math.ceil(rows / (fill * caps.sum()))))
    base = rows * caps / (n_per * caps.sum())
    parts: list[dict[str, np.ndarray]] = []
    total, carry = 0, 0.0
    for per in periods:
        for st, b in zip(streams, base):
            if rows - total < MIN_GROUP:
                break
            budget = min(int(b + carry), rows - total)
            n = min(len(st.bp), budget // MIN_GROUP)
            got = 0
            if n:
                pick = np.argsort(-(st.logw + rng.gumbel(size=len(st.bp))), kind="stable")[:n]
                w = np.exp(st.logw[pick])
                size = MIN_GROUP + rng.multinomial(budget - MIN_GROUP * n, w / w.sum())
                a = np.where((rng.random(n) < 0.04) & (size >= 14), 6, 5)
                width = 2 * a + 1
                detail = (size > N_NAT + width) | ((rng.random(n) < st.p_detail) & (size >= 2 * width))
                k = np.where(detail, np.minimum(N_NAT, size // width - 1), np.minimum(N_NAT, size - width))
                used = np.where(detail, (k + 1) * width, k + width)
                got = int(used.sum())
                parts.append({
                    "period": np.full(n, per), "country": np.full(n, st.country),
                    "flow": np.full(n, st.flow), "bp": st.bp[pick], "cp": st.cp[pick],
                    "k": k, "a": a, "detail": detail, "rows": used,
                    "scale": SCALE[MEMBERS[st.country]] * FLOW_SHARE[st.flow] * w / np.exp(st.logw).sum(),
                })
            total += got
            carry += b - got
        if rows - total < MIN_GROUP:
            break
    else:
        raise ValueError(f"{rows} rows do not fit in the periods available for {countries}")
    plan = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    short = rows - total
    if short:  # widen one group without detail to land exactly on `rows`
        room = np.flatnonzero(~plan["detail"] & (plan["k"] + short <= N_NAT))
        if len(room):
            plan["k"][room[-1]] += short
            plan["rows"][room[-1]] += short
    return plan


def _period_factor() -> np.ndarray:
    """Seasonality, slow growth and the 2020-21 collapse of travel, per period."""
    p = np.arange(FIRST_PERIOD, LAST_PERIOD + 1)
    year, month = p // 12, p % 12
    f = (1 + 0.15 * np.cos(2 * np.pi * (month - 6) / 12)) * 1.03 ** (year - 2000)
    f[(p >= 2020 * 12 + 3) & (p < 2021 * 12)] *= 0.15
    f[(p >= 2021 * 12) & (p < 2022 * 12)] *= 0.5
    return f


BASE_LOGW = np.concatenate([-1.1 * np.log(np.arange(1, N_NAT)), [-3.0]])
NAT_OF_MEMBER = np.array([NATIONALITIES.index(c) for c in MEMBERS])
NAT_OF_CP = np.array([NATIONALITIES.index(c) if c in NATIONALITIES else -1 for c in CP_CODES])
PF = _period_factor()


def _chunk(rng: np.random.Generator, g: dict[str, np.ndarray], n_months: int) -> dict[str, np.ndarray]:
    """Counts of all rows of some groups; every total is a sum over the same cube."""
    n_g = len(g["k"])
    k, a6 = g["k"], g["a"] == 6
    # which nationalities each group reports: weighted sampling without replacement
    logw = BASE_LOGW + rng.normal(0, 0.7, (n_g, N_NAT))
    rows_g = np.arange(n_g)
    own = NAT_OF_MEMBER[g["country"]]
    permit = g["flow"] == FLOWS.index("RESIDENCE_PERMIT")
    logw[rows_g, own] += np.where(permit, -6.0, 3.0)
    cpn = NAT_OF_CP[g["cp"]]
    has_cp = cpn >= 0
    logw[rows_g[has_cp], cpn[has_cp]] += 2.5
    order = np.argsort(-(logw + rng.gumbel(size=logw.shape)), axis=1)
    take = np.arange(N_NAT) < k[:, None]
    nat = order[take]
    grp = np.repeat(rows_g, k)
    w = np.exp(logw[grp, nat])
    w /= np.bincount(grp, w, n_g)[grp]
    # the cube: nationality x (sex, age band) x month
    total = g["scale"] * rng.lognormal(0, 0.4, n_g)
    male = np.clip(MALE_SHARE[g["flow"]][grp] + rng.normal(0, 0.06, len(grp)), 0.05, 0.95)
    age = AGE_SHARE[g["flow"]] * rng.lognormal(0, 0.25, (n_g, 6))
    age[~a6, 5] = 0.0
    age /= age.sum(axis=1, keepdims=True)
    sexage = np.concatenate([(1 - male)[:, None] * age[grp], male[:, None] * age[grp]], axis=1)
    if n_months == 1:
        month_f = PF[g["period"] - FIRST_PERIOD][:, None]
    else:
        month_f = PF[(g["period"] * 12 - FIRST_PERIOD)[:, None] + np.arange(12)]
    lam = (total[grp] * w)[:, None, None] * sexage[:, :, None] * month_f[grp][:, None, :]
    cells = rng.poisson(lam)
    by_nat = cells.sum(axis=1)
    starts = np.concatenate([[0], np.cumsum(k)[:-1]])
    by_sexage = np.add.reduceat(cells, starts, axis=0)
    grand = by_sexage.sum(axis=1)
    # rows: grand total, sex-by-age, by-nationality, detail; all in group order
    j = np.arange(12)
    sa_g, sa_j = np.nonzero((j % 6 < 5) | a6[:, None])
    det_r, det_j = np.nonzero(g["detail"][grp][:, None] & ((j % 6 < 5) | a6[grp][:, None]))
    out = {
        "grp": np.concatenate([rows_g, sa_g, grp, grp[det_r]]),
        "nat": np.concatenate([np.full(n_g + len(sa_g), NAT_T), nat, nat[det_r]]),
        "sex": np.concatenate([np.full(n_g, 2), sa_j // 6, np.full(len(grp), 2), det_j // 6]),
        "age": np.concatenate([np.full(n_g, 6), sa_j % 6, np.full(len(grp), 6), det_j % 6]),
        "count": np.concatenate([grand, by_sexage[sa_g, sa_j], by_nat, cells[det_r, det_j]]),
    }
    order = np.argsort(out["grp"], kind="stable")
    return {key: v[order] for key, v in out.items()}


def _dict(indices: np.ndarray, codes: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), pa.array(codes))


def _dotted(v: np.ndarray) -> pa.Array:
    """Counts with '.' as thousands separator, as Spanish-language spreadsheets write them."""

    def group(x: np.ndarray, more: np.ndarray) -> pa.Array:
        text = pc.cast(pa.array(x % 1000), pa.string())
        return pc.if_else(pa.array(more), pc.utf8_lpad(text, 3, "0"), text)

    rest = v // 1000
    out = group(v, rest > 0)
    while rest.any():
        higher = rest // 1000
        joined = pc.binary_join_element_wise(group(rest, higher > 0), out, ".")
        out = pc.if_else(pa.array(rest > 0), joined, out)
        rest = higher
    return out


def _table(g: dict[str, np.ndarray], r: dict[str, np.ndarray], wide: bool, names: list[str]) -> pa.Table:
    gi = r["grp"]
    cols = [
        _dict(g["flow"][gi], FLOWS), _dict(g["bp"][gi], BP_CODES), _dict(g["cp"][gi], CP_CODES),
        _dict(r["sex"], SEXES), _dict(r["age"], AGES), _dict(r["nat"], NAT_CODES),
    ]
    if wide:
        year = pa.array(g["period"][gi].astype(np.int32))
        return pa.Table.from_arrays([year, *cols, *(_dotted(r["count"][:, m]) for m in range(12))], names=names)
    status = np.where(g["period"][gi] >= LAST_PERIOD - 2, 1, g["status"][gi])  # recent months: provisional
    return pa.Table.from_arrays([
        _dict(g["country"][gi], MEMBERS), _dict(g["period"][gi] - FIRST_PERIOD, PERIODS), *cols,
        pa.array(r["count"][:, 0]), _dict(status, STATUSES),
    ], names=names)


def _parse_period(text: str) -> int:
    year, month = (int(x) for x in text.split("-"))
    p = year * 12 + month - 1
    if len(text) != 7 or not 1 <= month <= 12 or not FIRST_PERIOD <= p <= LAST_PERIOD:
        raise ValueError(f"start must be a YYYY-MM between {PERIODS[0]} and {PERIODS[-1]}: {text!r}")
    return p


def generate(
    rows: int,
    out: Path,
    variant: str = "standard",
    seed: int = 42,
    country: str | None = None,
    start: str = "2019-01",
) -> int:
    """Write a valid synthetic submission; returns its number of long rows.

    The same arguments always give the same bytes, so benchmark runs compare.
    The wide layout has no country column, so it describes one country
    (`country`, else PAN) and counts twelve long rows per line.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}: {variant!r}")
    wide = variant == "wide"
    if country is None and wide:
        country = WIDE_DEFAULT_COUNTRY
    if country is not None and country not in MEMBERS:
        raise ValueError(f"country must be a member ISO3 code: {country!r}")
    n_months = 12 if wide else 1
    target = max(MIN_GROUP, math.ceil(rows / n_months))
    rng = np.random.default_rng(seed)
    plan = _plan(rng, target, [country] if country else MEMBERS, _parse_period(start), wide)
    plan["status"] = rng.choice(3, len(plan["k"]), p=[0.95, 0.02, 0.03])
    names = HEADER_WIDE if wide else HEADER_ES if variant == "latin1_es" else HEADER
    options = pcsv.WriteOptions(
        include_header=True, batch_size=1 << 16, delimiter="," if variant == "standard" else ";",
        eol="\r\n" if variant == "latin1_es" else "\n", quoting_style="none", quoting_header="none",
    )
    cells = np.cumsum(plan["k"] * 12 * n_months)
    chunk_id = np.maximum(cells // CHUNK_CELLS, np.arange(len(cells)) // CHUNK_GROUPS)
    bounds = [0, *(np.flatnonzero(np.diff(chunk_id)) + 1), len(cells)]
    written = 0
    writer = None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            g = {key: v[lo:hi] for key, v in plan.items()}
            table = _table(g, _chunk(rng, g, n_months), wide, names)
            if writer is None:
                writer = pcsv.CSVWriter(out, table.schema, write_options=options)
            writer.write_table(table)
            written += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return written * n_months


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True, help="long rows to write (wide: lines x 12)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant", choices=VARIANTS, default="standard")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--country", choices=MEMBERS)
    parser.add_argument("--start", default="2019-01", help="first period, YYYY-MM")
    args = parser.parse_args(argv)
    n = generate(args.rows, args.out, args.variant, args.seed, args.country, args.start)
    print(f"wrote {n} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
