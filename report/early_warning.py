"""Early warning (standard Q02): a month that moved beyond its series' usual range.

The method, on a monthly series of persons (robust to outliers, aware of
seasons, quick to accept a new level):

- A month is judged by its change from a reference month, in logarithms
  (a 20 % rise is the same news at 500 persons and at 50,000).
- The usual change into that calendar month is the median of the same
  change in earlier years (the yearly peak of December is no news), and the
  usual spread is the median absolute deviation (MAD, scaled to a standard
  deviation) of the seasonally adjusted changes of the last 24 months.
- The month alerts when its adjusted change lies beyond THRESHOLD spreads
  and the persons it differs by are at least MIN_PERSONS.
- The reference is last month; when last month itself alerted, the month
  must also be unusual against the last month that did not: a spike alerts
  in its month alone (the month after returns to the old level), a level
  shift alerts once and its new level is the reference after that.

A series needs MIN_MONTHS months before the month judged; a shorter one says
so instead of alerting. `docs/benchmarks.md` holds the precision and recall
on a labelled set of generated series (`bench/early_warning.py`).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date

from hmo.months import shift

THRESHOLD = 4.0        # robust standard deviations of the adjusted month-over-month change
MIN_PERSONS = 30       # a change smaller than this is never news
MIN_MONTHS = 24        # months of history before the month judged: two Januaries to learn January from
SPREAD_FLOOR = 0.03    # a series that never moves still has this much noise (3 %)
_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Judgement:
    period: date
    value: int
    alert: bool
    too_short: bool = False
    low: int | None = None       # the usual range for the month, given the reference month
    high: int | None = None
    reference: date | None = None


def _log(value: float) -> float:
    return math.log1p(max(value, 0))


def judge_series(series: dict[date, int], until: date | None = None) -> list[Judgement]:
    """Every month of the series (months missing count as absent, not zero), oldest first."""
    if not series:
        return []
    months = sorted(series)
    last = until or months[-1]
    logs = {m: _log(v) for m, v in series.items()}
    judged: dict[date, Judgement] = {}
    adjusted: dict[date, float] = {}  # month -> seasonally adjusted change from last month
    for period in months:
        if period > last:
            break
        previous = shift(period, -1)
        history = [m for m in months if m < period]
        if previous not in logs or len(history) < MIN_MONTHS:
            judged[period] = Judgement(period, series[period], False, too_short=len(history) < MIN_MONTHS)
            if previous in logs:
                adjusted[period] = logs[period] - logs[previous]
            continue
        seasonal = _seasonal_change(logs, period)
        adjusted[period] = logs[period] - logs[previous] - seasonal
        recent = [adjusted[m] for m in adjusted if shift(period, -24) <= m < period]
        centre = statistics.median(recent) if recent else 0.0
        spread = max(SPREAD_FLOOR, _MAD_TO_SD * statistics.median(abs(x - centre) for x in recent)) \
            if recent else SPREAD_FLOOR
        references = [previous]
        if judged.get(previous) and judged[previous].alert:
            calm = next((m for m in reversed(history) if not (judged.get(m) and judged[m].alert)), None)
            if calm is not None:
                references.append(calm)
        verdicts = [_against(series, logs, period, ref, seasonal_from(logs, ref, period), centre, spread)
                    for ref in references]
        alert = all(unusual for unusual, _, _ in verdicts)
        _, low, high = verdicts[0] if not alert else verdicts[-1]
        judged[period] = Judgement(period, series[period], alert, low=low, high=high,
                                   reference=references[-1] if alert else references[0])
    return [judged[m] for m in months if m in judged]


def _seasonal_change(logs: dict[date, float], period: date) -> float:
    """The median change into this calendar month in earlier years (0 without any)."""
    changes = []
    for years in range(1, 10):
        earlier = shift(period, -12 * years)
        before = shift(earlier, -1)
        if earlier in logs and before in logs:
            changes.append(logs[earlier] - logs[before])
    return statistics.median(changes) if changes else 0.0


def seasonal_from(logs: dict[date, float], reference: date, period: date) -> float:
    """The usual change from `reference` to `period`: the seasonal changes of the months in between."""
    total, month = 0.0, reference
    while month < period:
        month = shift(month, 1)
        total += _seasonal_change(logs, month)
    return total


def _against(series: dict[date, int], logs: dict[date, float], period: date, reference: date, seasonal: float,
             centre: float, spread: float) -> tuple[bool, int, int]:
    """(unusual?, low, high): the month against what `reference` and the season make usual."""
    steps = (period.year - reference.year) * 12 + period.month - reference.month
    width = THRESHOLD * spread * math.sqrt(steps)
    expected = logs[reference] + seasonal + centre * steps
    low, high = math.expm1(expected - width), math.expm1(expected + width)
    value = series[period]
    unusual = not (low <= value <= high) and abs(value - series[reference]) >= MIN_PERSONS
    return unusual, max(0, round(low)), round(high)
