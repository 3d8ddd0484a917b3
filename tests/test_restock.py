from hypothesis import given
from hypothesis import strategies as st

from plugin.services.restock import lines_covered_by_stock


def test_restock_covers_oldest_lines_first():
    lines = [(1, 2), (2, 3), (3, 1)]
    # 6 units open, stock at -4: 2 units covered → only the oldest line (2 units).
    assert lines_covered_by_stock(lines, -4) == [1]
    assert lines_covered_by_stock(lines, 0) == [1, 2, 3]
    assert lines_covered_by_stock(lines, -6) == []


def test_a_line_is_covered_whole_and_younger_lines_wait_their_turn():
    # 3 covered: line 1 (2) fits, line 2 (3) doesn't, line 3 (1) must still wait.
    assert lines_covered_by_stock([(1, 2), (2, 3), (3, 1)], -3) == [1]


@given(st.lists(st.integers(1, 20), max_size=20), st.integers(-500, 500))
def test_never_allocates_more_units_than_stock_covers(quantities, available):
    lines = list(enumerate(quantities, start=1))
    allocated = set(lines_covered_by_stock(lines, available))
    covered_units = sum(q for i, q in lines if i in allocated)
    assert covered_units <= max(0, sum(quantities) - max(0, -available))
    # oldest first: allocated ids form a prefix
    assert allocated == set(range(1, len(allocated) + 1))
