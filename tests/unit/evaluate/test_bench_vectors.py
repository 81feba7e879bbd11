"""bench/quality/vectors.py: the row-by-row cosines of two builds' vectors."""

import numpy as np
import pytest

from bench.quality.vectors import cosines


def test_rows_are_compared_to_the_same_row_and_counted_under_the_bound():
    first = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], np.float32)
    second = np.array([[1.0, 0.0], [0.1, 1.0], [1.0, -1.0]], np.float32)  # the same, near, orthogonal
    count, least, mean, under = cosines(first, second)
    assert (count, least, under) == (3, "0.00000", 1)  # the near row at 0.995 is over 0.99
    assert float(mean) == pytest.approx((1 + 1 / np.sqrt(1.01)) / 3, abs=1e-5)
    assert cosines(first[:0], second[:0]) == [0, "", "", 0]  # a row as long as the others
    with pytest.raises(SystemExit):
        cosines(first, second[:2])
