from datetime import date

from hmo.months import shift, window


def test_months_move_across_year_ends_both_ways():
    assert shift(date(2024, 12, 1), 1) == date(2025, 1, 1)
    assert shift(date(2025, 1, 1), -1) == date(2024, 12, 1)
    assert shift(date(2024, 3, 1), -27) == date(2021, 12, 1)


def test_a_window_ends_with_its_month_oldest_first():
    assert window(date(2025, 2, 1), 3) == [date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1)]
    assert len(window(date(2025, 2, 1), 24)) == 24 and window(date(2025, 2, 1), 24)[0] == date(2023, 3, 1)
