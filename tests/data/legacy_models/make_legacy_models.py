"""Write the model files of tests/test_models_checkpoint.py::test_files_of_earlier_versions_load.

Run once with the brainexpr of main at commit 70cd9aa (the last version that wrote the
three earlier layouts: ``brainexpr-estimator`` 1, ``brainexpr-inr`` 1 and
``brainexpr.GraphVAERegressor/1``); the files and the predictions that code made are kept
here, so later versions are tested against what the old code wrote::

    python tests/data/legacy_models/make_legacy_models.py tests/data/legacy_models
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def sites(n: int = 40):
    """Deterministic sites of two donors, two genes (one partly unmeasured) and queries."""
    rng = np.random.default_rng(7)
    coords = rng.uniform([-60, -90, -40], [60, 60, 70], (n, 3))
    x, y, z = coords.T
    values = pd.DataFrame({"APOE": np.sin(x / 25) + 0.1 * rng.normal(size=n),
                           "MAPT": np.cos(y / 30) + z / 80})
    values.iloc[:5, 1] = np.nan
    tissue = rng.choice([-1, 0, 1], n)
    donors = np.repeat(["H0351.1009", "H0351.1012"], n // 2)
    query = rng.uniform([-60, -90, -40], [60, 60, 70], (11, 3))
    return coords, values, tissue, donors, query, rng.choice([-1, 0, 1], len(query))


def main(folder: Path) -> None:
    from brainexpr.models.checkpoint import save_model
    from brainexpr.models.registry import make_model
    from brainexpr.models.vae import GraphVAERegressor

    torch.manual_seed(0)
    coords, values, tissue, donors, query, query_tissue = sites()
    expected = {"query": query, "query_tissue": query_tissue}
    nearest = make_model("nearest").fit(coords, values)
    save_model(nearest, folder / "nearest.pt", name="nearest", provenance={"source": "legacy"})
    expected["nearest"] = nearest.predict(query, query_tissue)
    kriging = make_model("donor-kriging", nugget_grid=(0.15,), donor_grid=(0.0, 1.0))
    kriging.fit(coords, values, tissue=tissue, donors=donors)
    save_model(kriging, folder / "donor-kriging.pt", name="donor-kriging")
    expected["donor-kriging"] = kriging.predict(query, query_tissue)
    expected["donor-kriging_std"] = kriging.predict_std(query, query_tissue)
    inr = make_model("factorized", n_layers=2, hidden_features=8, n_features=4, gene_hidden=4,
                     n_frequencies=2, max_steps=3, eval_every=3, validation_fraction=0.0,
                     n_ensemble=2, random_state=0, device="cpu")
    inr.fit(coords, values, tissue=tissue)
    inr.provenance_ = {"source": "legacy"}
    save_model(inr, folder / "factorized.pt")
    expected["factorized"], expected["factorized_std"] = inr.predict(query, query_tissue,
                                                                     return_std=True)
    regions = pd.DataFrame(np.random.default_rng(3).normal(size=(8, 5)),
                           columns=[f"G{i}" for i in range(5)],
                           index=[f"r{i}" for i in range(8)])
    target = pd.Series(regions["G0"] - regions["G1"], name="target")
    vae = GraphVAERegressor(n_components=2, hidden_sizes=(4,), n_epochs=5, device="cpu")
    vae.fit(regions, target)
    vae.save(folder / "graph_vae.pt")
    expected["vae_X"] = regions.to_numpy()
    expected["vae"] = vae.predict(regions)
    expected["vae_transform"] = vae.transform(regions)
    np.savez(folder / "expected.npz", **expected)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
