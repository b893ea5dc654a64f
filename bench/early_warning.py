"""Precision and recall of the early warning (report.early_warning) on labelled generated series.

`python -m bench.early_warning [--series 200] [--seed 1]` prints them; the
tests run 60 series. Each series is 48 months of persons: a level (200 to
200,000), a yearly season (none, or a peak of +20-80 % in one or two
months), a trend (-2 to +2 % a month), lognormal noise (3-10 %), and at
most one event in the last 24 months: a spike (x2-x4, or /2-/4, one month)
or a level shift (x2-x4 or /2-/4, lasting). The labels are the spike's month
and the shift's first month; an alert elsewhere is a false positive, an
event month without one a miss.
"""
from __future__ import annotations

import argparse
import math
import random
from dataclasses import dataclass, field
from datetime import date

from report.early_warning import judge_series

MONTHS = 48
START = date(2021, 1, 1)


def month(index: int) -> date:
    return date(START.year + index // 12, index % 12 + 1, 1)


@dataclass
class Labelled:
    series: dict[date, int]
    events: set[date] = field(default_factory=set)
    kind: str = "none"


def generate(rng: random.Random) -> Labelled:
    level = math.exp(rng.uniform(math.log(200), math.log(200_000)))
    trend = rng.uniform(-0.02, 0.02)
    noise = rng.uniform(0.03, 0.10)
    season = [0.0] * 12
    if rng.random() < 0.7:
        for peak in rng.sample(range(12), rng.choice([1, 2])):
            season[peak] = math.log(1 + rng.uniform(0.2, 0.8))
    kind = rng.choice(["none", "spike", "shift"])
    at = rng.randrange(MONTHS - 24, MONTHS - 1)
    factor = rng.uniform(2, 4) ** rng.choice([1, -1])
    values: dict[date, int] = {}
    for i in range(MONTHS):
        log_value = math.log(level) + trend * i + season[i % 12] + rng.gauss(0, noise)
        if kind == "spike" and i == at or kind == "shift" and i >= at:
            log_value += math.log(factor)
        values[month(i)] = max(0, round(math.exp(log_value)))
    return Labelled(values, {month(at)} if kind != "none" else set(), kind)


def evaluate(count: int, seed: int) -> tuple[float, float, int, int, int]:
    """(precision, recall, true alerts, false alerts, missed events) over the months the method judges."""
    rng = random.Random(seed)
    true = false = missed = 0
    for _ in range(count):
        labelled = generate(rng)
        alerts = {j.period for j in judge_series(labelled.series) if j.alert}
        true += len(alerts & labelled.events)
        false += len(alerts - labelled.events)
        missed += len(labelled.events - alerts)
    precision = true / (true + false) if true + false else 1.0
    recall = true / (true + missed) if true + missed else 1.0
    return precision, recall, true, false, missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.early_warning", description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    precision, recall, true, false, missed = evaluate(args.series, args.seed)
    print(f"{args.series} series (seed {args.seed}): precision {precision:.2f}, recall {recall:.2f} "
          f"({true} alerts on an event, {false} elsewhere, {missed} events missed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
