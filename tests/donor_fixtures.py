"""Synthetic donor data shared by the tests of the kriging family and its INR variants
(imported by them)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist


def gp(coords, rng, n, range_mm):
    cov = np.exp(-cdist(coords, coords) / range_mm) + 1e-8 * np.eye(len(coords))
    return np.linalg.cholesky(cov) @ rng.normal(size=(len(coords), n))


@pytest.fixture(scope="module")
def donor_data():
    """Four donors sample a shared field; each adds a strong smooth deviation of its own."""
    rng = np.random.default_rng(0)
    n_donors, per_donor, n_genes = 4, 150, 4
    coords = rng.uniform(-50, 50, size=(n_donors * per_donor, 3))
    donors = np.repeat([f"d{i}" for i in range(n_donors)], per_donor)
    tissue = rng.choice([1, -1, 0], size=len(coords))
    truth = gp(coords, rng, n_genes, 30.0) + 0.8 * (tissue == -1)[:, None]
    deviation = np.zeros_like(truth)
    for d in np.unique(donors):
        rows = donors == d
        deviation[rows] = 1.5 * gp(coords[rows], rng, n_genes, 20.0)
    values = truth + deviation + 0.3 * rng.normal(size=truth.shape)
    return coords, values, truth, donors, tissue


def corr(a, b):
    return np.mean([np.corrcoef(a[:, g], b[:, g])[0, 1] for g in range(a.shape[1])])


@pytest.fixture(scope="module")
def hemispheres():
    """Sites in both hemispheres; genes 0-3 symmetric (a field of |x|), 4-7 independent per side."""
    rng = np.random.default_rng(0)
    coords = rng.uniform([-60, -60, -40], [60, 60, 40], size=(600, 3))
    folded = np.column_stack([np.abs(coords[:, 0]), coords[:, 1:]])
    symmetric = gp(folded, rng, 4, 20.0)
    independent = np.where(coords[:, :1] < 0, gp(coords, rng, 4, 20.0), gp(coords, rng, 4, 20.0))
    truth = np.column_stack([symmetric, independent])
    return coords, truth + 0.3 * rng.normal(size=truth.shape), truth
