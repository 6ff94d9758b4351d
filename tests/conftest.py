"""Shared fixtures: the reference data folder, a network blocker, small synthetic images.

The modules of ``benchmarks/`` (experiments kept outside the package) are importable by
name, as the scripts there import each other (``import inr_variants``).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainexpr.config import get_data_dir

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never touch the network: any attempt to open a socket fails loudly."""

    def guard(*args, **kwargs):
        raise RuntimeError("tests must not use the network")

    monkeypatch.setattr(socket.socket, "connect", guard)


@pytest.fixture(scope="session")
def data_dir():
    """The reference data folder; real-data tests are skipped when it is absent."""
    path = get_data_dir()
    if not (path / "regional").is_dir():
        pytest.skip(f"reference data folder not found ({path}); set BRAINEXPR_DATA")
    return path


@pytest.fixture
def tiny_atlas():
    """A 2 mm MNI152-grid atlas with four box-shaped parcels (ids 1-4) and its table."""
    import pandas as pd

    from brainexpr.atlas.space import mni_grid

    shape, affine = mni_grid(2)
    labels = np.zeros(shape, dtype=np.int16)
    labels[20:40, 40:60, 30:50] = 1   # left (x > 0 voxel index < 45 -> positive mm: right? see affine)
    labels[50:70, 40:60, 30:50] = 2
    labels[20:40, 60:80, 30:50] = 3
    labels[50:70, 60:80, 30:50] = 4
    image = nib.Nifti1Image(labels, affine)
    regions = pd.DataFrame({"id": [1, 2, 3, 4], "hemisphere": ["R", "L", "R", "L"],
                            "structure": ["cortex", "cortex", "subcortex", "subcortex"]},
                           index=pd.Index(["a", "b", "c", "d"], name="region"))
    return image, regions


@pytest.fixture
def torch_one_thread():
    """Run a test with one torch thread (tests share two cores under pytest -n 2)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def sites():
    """Smooth fields at 240 sites of 3 donors; one gene is unmeasured at 30 sites; 97 query
    points: ``(coords, values, tissue, donors, query, query_tissue)``."""
    rng = np.random.default_rng(1)
    coords = rng.uniform([-60, -90, -40], [60, 60, 70], (240, 3))
    x, y, z = coords.T
    values = pd.DataFrame({"APOE": np.sin(x / 25) + 0.1 * rng.normal(size=240),
                           "MAPT": np.cos(y / 30) + z / 80})
    values.iloc[:30, 1] = np.nan  # two groups of measured sites (a list of weights)
    tissue = rng.choice([-1, 0, 1], len(coords))
    donors = np.repeat(["H0351.1009", "H0351.1012", "H0351.2001"], 80)
    query = rng.uniform([-60, -90, -40], [60, 60, 70], (97, 3))
    return coords, values, tissue, donors, query, rng.choice([-1, 0, 1], 97)
