"""The seed paper's Table 1 on the phantom: its metric next to ours, in one table.

Issue 17, item 3. The paper (Yu et al., Table 1) scores three maps against abagen's
regional map with a voxel-wise Pearson R (and MSE) over the whole volume, background
included: "INR" (one network per gene, no gene axis), "INR + Spectral Embedding" (the
joint SIREN on the gene-axis encoding) and "INR + Spectral Embedding + Regional Averaged"
(that map replaced by its mean in each DK parcel). On the phantom, where the truth is
known, the same maps are also scored by our metrics:

* ``paper R vs abagen`` / ``paper MSE vs abagen``: the whole 2 mm grid (902,629 voxels, 0
  outside the brain), against abagen's regional map (the abagen-style regional values,
  mean per donor then over donors, painted on the DK-83 parcels, 0 elsewhere -- as abagen
  writes it); computed with :func:`brainexpr.evaluation.metrics.whole_volume_r`;
* ``R vs truth in mask``: per-gene R over uniformly drawn brain voxels (only where the map
  has a value: parcel voxels for the parcel-valued maps);
* ``regional R vs truth``: per-gene R across the DK-83 parcels between the map's parcel
  means and the true parcel means.

Reference rows: abagen's regional map itself and the truth itself (a perfect map), scored
the same way. The networks are the paper's (12 x 512, omega_0 = 30, N = 10, Adam 1e-4,
lowest training loss after a random 18:1:1 split) fitted on all phantom sites; the
per-gene "INR" uses the same depth and width per gene. Steps, genes and sites per step
are arguments and printed with the numbers.

Usage (one thread)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/paper_table1.py --n-genes 6 --max-steps 500
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd
import torch

from brainexpr.evaluation import metrics as M
from brainexpr.evaluation.ablation import PAPER_INR
from brainexpr.evaluation.benchmark import phantom_data
from brainexpr.evaluation.phantom import make_phantom
from brainexpr.evaluation.protocols import map_voxels_for_scoring
from brainexpr.models.base import fit_samples
from brainexpr.models.inr import INRRegressor
from paper_config import PAPER_SELECTION, machine_line  # the same selection and machine line

def paint(regional: pd.DataFrame, region_keys, genes) -> np.ndarray:
    """(n_voxels, n_genes) map with each parcel's value on its voxels, NaN off the parcels."""
    table = regional.reindex(columns=genes)
    rows = table.reindex(pd.Index(region_keys, dtype=object))
    return rows.to_numpy(float)


def score(name, predicted, reference_abagen, truth, regions, n_uniform, n_background, n_mask,
          truth_regional, genes) -> dict:
    """One Table 1 row: the paper's whole-volume R/MSE vs abagen, ours vs the truth."""
    uniform = slice(0, n_uniform)
    as_written = np.nan_to_num(predicted[uniform])         # maps are written with 0 off the values
    abagen_written = np.nan_to_num(reference_abagen[uniform])
    paper_r = M.whole_volume_r(as_written, abagen_written, n_background, n_mask=n_mask)
    paper_mse = ((as_written - abagen_written) ** 2).mean(axis=0) * n_mask / (n_mask + n_background)
    ours = M.gene_metrics(predicted[uniform], truth[uniform], genes)
    regional = M.regional_means(predicted, regions)
    regional.columns = genes
    per_gene, _ = M.regional_agreement(regional, truth_regional)
    return {"map": name,
            "paper R vs abagen": np.nanmean(paper_r), "paper R SD": np.nanstd(paper_r),
            "paper MSE vs abagen": np.nanmean(paper_mse),
            "R vs truth in mask": ours["pearson"].mean(), "voxels scored": int(ours["n"].min()),
            "regional R vs truth": per_gene.mean()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-genes", type=int, default=6, help="phantom genes (default 6)")
    parser.add_argument("--max-steps", type=int, default=5000, help="steps (default: the paper's 5000)")
    parser.add_argument("--pairs-per-step", type=int, default=384,
                        help="(site, gene) pairs per step (default 384)")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--map-voxels", type=int, default=20_000)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--out", default=None, help="CSV of the table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = phantom_data(make_phantom(args.n_genes, random_state=args.random_state))
    genes = data.genes
    coords, tissue, regions, n_uniform, n_background, n_mask = map_voxels_for_scoring(
        args.map_voxels, 30, args.random_state)
    truth = data.phantom.truth(coords)
    truth_regional = data.phantom.regional_truth()
    abagen_regional = M.abagen_regional(data.values.to_numpy(float), data.donors, data.regions)
    abagen_regional.columns = genes
    abagen_map = paint(abagen_regional, regions, genes)
    common = dict(PAPER_INR, max_steps=args.max_steps, eval_every=args.eval_every,
                  batch_size=max(args.pairs_per_step // len(genes), 1),
                  random_state=args.random_state, **PAPER_SELECTION)
    maps, fit_s = {}, {}
    for name, design in (("INR", "per_gene"), ("INR + gene axis", "paper")):
        model = INRRegressor(**{**common, "design": design})
        begin = time.perf_counter()
        fit_samples(model, data.coords, data.values.to_numpy(float), tissue=data.tissue,
                    gene_axis=data.gene_axis)
        fit_s[name] = time.perf_counter() - begin
        maps[name] = np.asarray(model.predict(coords, tissue=tissue), dtype=float)
        logging.info("%s fitted in %.0f s (kept step %d)", name, fit_s[name], model.best_step_[0])
    regional = M.regional_means(maps["INR + gene axis"], regions)
    regional.columns = genes
    maps["INR + gene axis + regional averaging"] = paint(regional, regions, genes)
    maps["reference: abagen regional map"] = abagen_map
    maps["reference: the truth"] = truth
    rows = [score(name, predicted, abagen_map, truth, regions, n_uniform, n_background, n_mask,
                  truth_regional, genes) for name, predicted in maps.items()]
    table = pd.DataFrame(rows)
    table["fit s"] = table["map"].map(fit_s)
    if args.out:
        table.to_csv(args.out, index=False)
    print(machine_line(start))
    print(f"scale: phantom seed {args.random_state}, {len(genes)} genes, {len(data.values)} sites, "
          f"{args.max_steps} steps, {common['batch_size']} sites per step, {n_uniform} uniform voxels "
          f"of {n_mask} in the mask, {n_background} background voxels")
    print(table.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
