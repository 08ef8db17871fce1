"""The fit's own median, percentile and distinct equal numpy's, without ``numpy.ma``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from leaksense.edge.detection.fit import distinct, median, nanmedian, percentile


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 97, 4_320])
def test_median_and_percentiles_equal_numpy_to_the_last_bit(n: int) -> None:
    values = np.random.default_rng(n).gamma(2.0, size=n)
    assert median(values) == float(np.median(values))
    for q in (0.5, 5, 50, 95, 99.5):
        assert percentile(values, q) == float(np.percentile(values, q))


def test_nanmedian_skips_missing_values_and_distinct_sorts() -> None:
    values = np.array([3.0, np.nan, 1.0, 2.0, np.nan])
    assert nanmedian(values) == 2.0
    assert np.isnan(median(np.array([])))
    assert distinct(np.array([3, 1, 2, 3, 1])).tolist() == [1, 2, 3]


def test_a_fit_does_not_import_numpy_ma() -> None:
    """``np.median``, ``np.percentile`` and ``np.unique`` import ``numpy.ma`` (4–6 MiB
    of the gateway's memory); a refit must not."""
    code = (
        "import sys, numpy as np\n"
        "from leaksense.edge.detection.clock import LocalClock\n"
        "from leaksense.edge.detection.fit import fit_artifact\n"
        "t = 1767225600.0 + np.arange(0, 16 * 86400, 300.0)\n"
        "fit_artifact('s', t, 5 + np.sin(t / 5000), LocalClock())\n"
        "print('numpy.ma' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"
