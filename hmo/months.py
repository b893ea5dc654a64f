"""Month arithmetic on the first day of a month, as periods are kept (`date(2024, 1, 1)` is 2024-01)."""
from __future__ import annotations

from datetime import date


def shift(period: date, months: int) -> date:
    """The first day of the month `months` after `period`'s (before it when negative)."""
    index = period.year * 12 + period.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def window(last: date, count: int) -> list[date]:
    """The `count` months ending with `last`'s, oldest first."""
    return [shift(last, -back) for back in range(count - 1, -1, -1)]
