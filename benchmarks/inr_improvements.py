"""Can an INR add to the donor kriging on held-out data? A small, fast experiment harness.

Compares :class:`~brainexpr.models.kriging.DonorKrigingRegressor` (the held-out winner)
with INR-based variants that build on it (``benchmarks/inr_variants.py``), on the same
folds as ``brainexpr benchmark``: spatially blocked 5-fold (20 mm blocks, 8 mm buffer)
and leave-one-donor-out, on the phantom (seed 0, 24 genes; scored against the truth at the
held-out sites) and on the real cell-type fractions (scored against the held-out values).

Variants (``--variants``):

``dk``
    Donor kriging, package defaults (the reference).
``res``
    Residual SIREN on the donor kriging (``ResidualINRRegressor`` defaults, 3 x 64).
``res-mirror-ens``
    The same with left-right mirroring of the training residuals (``rightleft``: the
    right-hemisphere residuals of the two bilateral donors feed the left hemisphere) and
    an ensemble of 3 seeds; per-gene shrinkage on held-out blocks as before.
``drift-features``
    ``INRDriftKrigingRegressor``: a factorized SIREN (3 x 64, 16 features, early stopped on
    spatial blocks) fitted to all genes; its trunk features are GLS drift columns of the
    donor kriging.
``drift-predictions``
    The same with the SIREN's per-gene predictions as drift columns.
``drift-features-ens``
    Trunk features of 3 SIRENs side by side (48 columns before whitening).
``drift-donor``
    Donor-aware network for the drift: the SIREN trunk feeds a population head and one
    penalised head per donor (donor deviations are absorbed there); its trunk features
    are the drift columns.
``res-donor``
    Donor-aware residual network: a SIREN (3 x 64, 16 features) on the donor kriging's
    residuals with a population head and a penalised head per donor (donor deviations go
    there); the population output only, shrunk per gene on held-out blocks as ``res``.
``kernel-features`` / ``kernel-donor``
    The trunk features (of the plain or the donor-aware SIREN) in the *covariance* instead
    of the drift: a term ``w phi(x) . phi(x')`` whose weight ``w`` each gene chooses from
    (0, 0.1, 0.3, 1) by profile likelihood with its nugget and donor share (``w = 0`` is
    the donor kriging), so a gene uses the network only as far as its likelihood supports.
``dk-regions``
    Not an INR: the donor kriging plus a DK-83 region random effect (covariance term
    ``w * same_region``, each point labelled with its nearest DK-83 parcel), ``w`` in
    (0, 0.1, 0.3, 1) chosen per gene by profile likelihood. Caution on the phantom, whose
    truth is partly painted on the same DK-83 parcels.
``dk-ranges``
    Not an INR: the donor kriging with a per-gene range (0.5, 1 or 2 times the pooled
    range), chosen by profile likelihood with the nugget and donor share.

For every (dataset, protocol, variant) the script reports the mean per-gene Pearson r and
R^2 (blocked: pooled over the held-out sites of all folds, as ``brainexpr benchmark``; donor:
per held-out donor, then averaged), the per-fold mean r (its spread across folds), the
paired per-fold difference to ``dk`` (mean and SD over folds; "wins" needs the mean
difference to exceed its standard error twice on both datasets) and the number of genes
whose r improved.

Usage (one thread; about 10-15 min CPU per dataset for all variants)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python \\
        benchmarks/inr_improvements.py --datasets phantom --out /tmp/inr_improvements_phantom.csv
    ... --datasets celltypes --out /tmp/inr_improvements_celltypes.csv
    .venv/bin/python benchmarks/inr_improvements.py --report /tmp/inr_improvements_*.csv \\
        --markdown benchmarks/results/inr_improvements.md
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

VARIANTS = ("dk", "res", "res-mirror-ens", "drift-features", "drift-predictions", "drift-features-ens",
            "drift-donor", "kernel-features", "kernel-donor", "dk-ranges", "dk-regions", "res-donor")


def make_variant(name: str, seed: int):
    """A fresh estimator for a variant name (see the module docstring)."""
    from brainexpr.models.kriging import DonorKrigingRegressor
    from inr_variants import INRDriftKrigingRegressor, ResidualINRRegressor

    if name == "dk":
        return DonorKrigingRegressor(random_state=seed)
    if name == "res":
        return ResidualINRRegressor(device="cpu", random_state=seed)
    if name == "res-mirror-ens":
        return ResidualINRRegressor(mirror="rightleft", n_ensemble=3, device="cpu", random_state=seed)
    if name == "drift-features":
        return INRDriftKrigingRegressor(drift="features", device="cpu", random_state=seed)
    if name == "drift-predictions":
        return INRDriftKrigingRegressor(drift="predictions", device="cpu", random_state=seed)
    if name == "drift-features-ens":
        return INRDriftKrigingRegressor(drift="features", n_ensemble=3, device="cpu", random_state=seed)
    if name == "drift-donor":
        return INRDriftKrigingRegressor(drift="features", donor_heads=True, device="cpu", random_state=seed)
    if name == "dk-ranges":
        return DonorKrigingRegressor(range_grid=(0.5, 1.0, 2.0), random_state=seed)
    if name == "res-donor":
        return DonorResidual(seed)
    if name == "dk-regions":
        return _region_kriging(seed)
    if name == "kernel-features":
        return INRDriftKrigingRegressor(use_as="kernel", device="cpu", random_state=seed)
    if name == "kernel-donor":
        return INRDriftKrigingRegressor(use_as="kernel", donor_heads=True, device="cpu", random_state=seed)
    raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")


class DonorResidual:
    """Donor kriging plus the population output of a donor-aware residual SIREN (experiment)."""

    def __init__(self, seed: int, validation_fraction: float = 0.2):
        self.seed = seed
        self.validation_fraction = validation_fraction

    def fit(self, coords, values, tissue=None, gene_axis=None, donors=None):
        from brainexpr.models.kriging import DonorKrigingRegressor, check_donors
        from inr_variants import DonorSiren, INRDriftKrigingRegressor, validation_rows

        rng = np.random.default_rng(self.seed)
        held = validation_rows(coords, self.validation_fraction, 20.0, rng)
        fit_rows, val_rows = np.flatnonzero(~held), np.flatnonzero(held)
        trend = DonorKrigingRegressor(random_state=self.seed).fit(
            coords[fit_rows], values[fit_rows], tissue=tissue[fit_rows], donors=donors[fit_rows])
        residual_fit = values[fit_rows] - trend.predict(coords[fit_rows], tissue[fit_rows])
        residual_val = values[val_rows] - trend.predict(coords[val_rows], tissue[val_rows])
        settings = INRDriftKrigingRegressor(random_state=self.seed)  # the network settings
        self.net_ = DonorSiren(settings, rng).fit(coords[fit_rows], residual_fit, tissue[fit_rows],
                                                   check_donors(donors[fit_rows], len(fit_rows)))
        predicted = self.net_.population(coords[val_rows], tissue[val_rows])
        valid = np.isfinite(residual_val)
        numerator = np.where(valid, residual_val * predicted, 0.0).sum(axis=0)
        denominator = np.where(valid, predicted * predicted, 0.0).sum(axis=0)
        self.shrinkage_ = np.clip(np.nan_to_num(numerator / np.maximum(denominator, 1e-300)), 0.0, 1.0)
        logging.info("res-donor shrinkage: %s", np.round(self.shrinkage_, 2))
        self.trend_ = DonorKrigingRegressor(random_state=self.seed).fit(coords, values, tissue=tissue,
                                                                        donors=donors)
        return self

    def predict(self, coords, tissue=None):
        return self.trend_.predict(coords, tissue) + self.shrinkage_ * self.net_.population(coords, tissue)


def _region_kriging(seed: int):
    """Donor kriging with a DK-83 region random effect (an experiment, not a package model)."""
    from brainexpr.atlas.space import mni_to_voxel
    from brainexpr.evaluation.phantom import _grid_context
    from brainexpr.models.kriging import DonorKrigingRegressor

    class RegionKriging(DonorKrigingRegressor):
        def _kernel_grid(self):
            return (0.0, 0.1, 0.3, 1.0)

        def _kernel_features(self, coords, tissue):
            context = _grid_context(None)
            ijk = mni_to_voxel(coords, context["affine"]) - context["origin"]
            extended = context["extended"]
            ijk = np.clip(ijk, 0, np.array(extended.shape) - 1)
            labels = extended[tuple(ijk.T)]
            ids = np.asarray(context["regions"]["id"], dtype=np.int64)
            return (labels[:, None] == ids[None, :]).astype(float)

    return RegionKriging(random_state=seed)


def load_dataset(name: str, seed: int):
    from brainexpr.evaluation.benchmark import celltype_data, phantom_data
    from brainexpr.evaluation.phantom import make_phantom

    if name == "phantom":
        return phantom_data(make_phantom(24, random_state=seed))
    if name == "celltypes":
        return celltype_data()
    raise SystemExit(f"unknown dataset {name!r}")


def run(datasets, protocols, variants, seed: int = 0) -> pd.DataFrame:
    """Per (dataset, protocol, variant, fold, gene): Pearson r, R^2 and n; plus timing rows."""
    import torch

    from brainexpr.evaluation.metrics import gene_metrics
    from brainexpr.evaluation.protocols import leave_one_donor_out, spatial_block_folds

    torch.set_num_threads(1)
    rows = []
    for dataset in datasets:
        data = load_dataset(dataset, seed)
        values = data.values.to_numpy(float)
        reference = values if data.truth_at_sites is None else data.truth_at_sites.to_numpy(float)
        splits = {"blocked": lambda: spatial_block_folds(data.coords, 5, 20.0, 8.0, seed),
                  "donor": lambda: leave_one_donor_out(data.donors)}
        for protocol in protocols:
            folds = splits[protocol]()
            for variant in variants:
                prediction = np.full_like(values, np.nan)
                fit_s = predict_s = 0.0
                for fold, split in enumerate(folds):
                    model = make_variant(variant, seed)
                    start = time.perf_counter()
                    model.fit(data.coords[split.train], values[split.train], tissue=data.tissue[split.train],
                              gene_axis=data.gene_axis, donors=data.donors[split.train])
                    fit_s += time.perf_counter() - start
                    start = time.perf_counter()
                    prediction[split.test] = model.predict(data.coords[split.test],
                                                           tissue=data.tissue[split.test])
                    predict_s += time.perf_counter() - start
                    table = gene_metrics(prediction[split.test], reference[split.test], data.genes)
                    for gene, row in table.iterrows():
                        rows.append((dataset, protocol, variant, str(fold), gene, row["pearson"], row["r2"],
                                     row["n"]))
                if protocol == "blocked":  # pooled over all held-out sites, as brainexpr benchmark
                    table = gene_metrics(prediction, reference, data.genes)
                    for gene, row in table.iterrows():
                        rows.append((dataset, protocol, variant, "pooled", gene, row["pearson"], row["r2"],
                                     row["n"]))
                rows.append((dataset, protocol, variant, "time", "fit_s", fit_s, predict_s, len(folds)))
                logging.info("%s / %s / %s: fit %.0f s, predict %.1f s", dataset, protocol, variant, fit_s,
                             predict_s)
    columns = ["dataset", "protocol", "variant", "fold", "gene", "pearson", "r2", "n"]
    return pd.DataFrame(rows, columns=columns)


def summarise(table: pd.DataFrame, baseline: str = "dk") -> pd.DataFrame:
    """One row per (dataset, protocol, variant): headline r, R^2, fold spread, paired gain."""
    out = []
    for (dataset, protocol), block in table.groupby(["dataset", "protocol"], sort=False):
        timing = block[block["fold"] == "time"].set_index("variant")
        scores = block[~block["fold"].isin(["time"])]
        folds = scores[scores["fold"] != "pooled"]
        per_fold = folds.groupby(["variant", "fold"])["pearson"].mean().unstack("fold")
        if protocol == "blocked":
            pooled = scores[scores["fold"] == "pooled"]
            headline = pooled.groupby(["variant", "gene"])[["pearson", "r2"]].mean()
        else:  # per held-out donor, then averaged over donors
            headline = folds.groupby(["variant", "gene"])[["pearson", "r2"]].mean()
        for variant in pd.unique(block["variant"]):
            genes = headline.loc[variant]
            base_genes = headline.loc[baseline] if baseline in headline.index.get_level_values(0) else None
            diff = per_fold.loc[variant] - per_fold.loc[baseline] if baseline in per_fold.index else None
            out.append({
                "dataset": dataset, "protocol": protocol, "variant": variant,
                "r": genes["pearson"].mean(), "r2": genes["r2"].mean(),
                "fold_r_mean": per_fold.loc[variant].mean(), "fold_r_sd": per_fold.loc[variant].std(ddof=1),
                "gain_vs_dk": np.nan if diff is None else diff.mean(),
                "gain_sd": np.nan if diff is None else diff.std(ddof=1),
                "gain_se": np.nan if diff is None else diff.std(ddof=1) / np.sqrt(len(diff)),
                "folds_better": np.nan if diff is None else int((diff > 0).sum()),
                "n_folds": per_fold.shape[1],
                "genes_better": np.nan if base_genes is None else
                int((genes["pearson"] > base_genes["pearson"]).sum()),
                "n_genes": len(genes),
                "fit_s": float(timing.loc[variant, "pearson"]) if variant in timing.index else np.nan,
            })
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame) -> str:
    lines = ["| dataset | protocol | variant | mean r (R^2) | per-fold r, mean +- SD | gain in r vs dk per "
             "fold, mean +- SD (folds better) | genes better | fit s (all folds) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in summary.itertuples():
        gain = "-" if row.variant == "dk" else (f"{row.gain_vs_dk:+.4f} +- {row.gain_sd:.4f} "
                                                f"({row.folds_better}/{row.n_folds})")
        genes = "-" if row.variant == "dk" else f"{row.genes_better}/{row.n_genes}"
        lines.append(f"| {row.dataset} | {row.protocol} | {row.variant} | {row.r:.3f} ({row.r2:.2f}) | "
                     f"{row.fold_r_mean:.3f} +- {row.fold_r_sd:.3f} | {gain} | {genes} | {row.fit_s:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["phantom", "celltypes"])
    parser.add_argument("--protocols", nargs="+", default=["blocked", "donor"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="/tmp/inr_improvements.csv", help="long table of per-fold scores")
    parser.add_argument("--report", nargs="+", default=None,
                        help="only summarise these long tables (written by earlier runs)")
    parser.add_argument("--markdown", default=None, help="write the summary table here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger().setLevel(logging.INFO)
    for name in ("brainexpr.models.inr", "brainexpr.models.kriging", "inr_variants",
                 "brainexpr.geneaxis"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.report:
        table = pd.concat([pd.read_csv(p, keep_default_na=False, na_values=["", "nan", "NaN"])
                           for p in args.report], ignore_index=True)
        table["fold"] = table["fold"].astype(str)
        # the reference (dk) is rerun in every table: keep one copy of each row
        table = table.drop_duplicates(subset=["dataset", "protocol", "variant", "fold", "gene"])
    else:
        start = time.perf_counter()
        table = run(args.datasets, args.protocols, args.variants, args.seed)
        table.to_csv(args.out, index=False)
        print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)")
    summary = summarise(table)
    pd.set_option("display.width", 220)
    print(summary.round(4).to_string(index=False))
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(markdown(summary))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
