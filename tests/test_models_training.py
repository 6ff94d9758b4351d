"""Tests of brainexpr.models.training: the recalibration of an ensemble's spread."""

import numpy as np
import pytest

from brainexpr.models.training import spread_and_floor


@pytest.mark.parametrize("a, b", [(2.0, 0.5), (3.0, 0.0), (0.0, 1.0)])
def test_spread_and_floor_recovers_the_error_model(a, b):
    rng = np.random.default_rng(0)
    spread = rng.lognormal(mean=-1.0, sigma=0.6, size=20_000)
    error = rng.normal(size=spread.size) * np.sqrt((a * spread) ** 2 + b ** 2)
    fitted_a, fitted_b = spread_and_floor(error, spread)
    total = np.mean((a * spread) ** 2 + b ** 2)
    # each part's share of the mean variance within the grid's step (0.05), the total within 5 %
    assert abs(fitted_a ** 2 * np.mean(spread ** 2) - a ** 2 * np.mean(spread ** 2)) / total < 0.06
    assert abs(fitted_b ** 2 - b ** 2) / total < 0.06
    fitted_total = np.mean((fitted_a * spread) ** 2 + fitted_b ** 2)
    assert abs(fitted_total / total - 1) < 0.05
    # nominal 90 % intervals of the fitted model cover about 90 % of these errors
    inside = np.abs(error) < 1.645 * np.sqrt((fitted_a * spread) ** 2 + fitted_b ** 2)
    assert 0.88 < inside.mean() < 0.92
