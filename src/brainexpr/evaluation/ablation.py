"""The seed paper's Fig. 3 ablations, scored on spatially held-out sites.

The paper varies one setting of its joint SIREN at a time (learning rate, frequencies of
the gene-axis encoding, width, depth, and noise added to the training values) and shows
only training-loss curves. :func:`run_ablation` fits the same variants and scores each
on the sites of spatially blocked folds (:func:`~brainexpr.evaluation.protocols.spatial_block_folds`)
against the held-out values and, on phantoms, against the truth there, keeping the loss
curves (training loss and the loss on the model's own spatially held-out validation
blocks) so that convergence and held-out accuracy can be read side by side.

Every variant starts from :data:`PAPER_INR` (12 x 512 SIREN, omega_0 30, N = 10, Adam
1e-4) and changes one axis of :data:`AXES`; the paper's model selection is used (the
state of lowest training loss, ``selection="training_loss"``), with 10 % of the training
sites held out in 20 mm blocks for the validation curve. Added noise is Gaussian with an
SD of the given fraction of each gene's SD over the training sites, added to the
training values only; held-out values and truth stay clean.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from ..models.base import fit_samples
from ..utils import check_random_state, progress
from . import metrics as M
from .protocols import spatial_block_folds

logger = logging.getLogger(__name__)

#: The seed paper's network and optimiser (section 3): 12 x 512 SIREN, omega_0 = 30,
#: positional encoding with N = 10, Adam at 1e-4 for 5,000 steps.
PAPER_INR = dict(design="paper", n_layers=12, hidden_features=512, omega_0=30.0, n_frequencies=10,
                 learning_rate=1e-4, max_steps=5000)

#: Fig. 3 axes: name -> values. ``noise`` is the SD of the noise added to the training
#: values as a fraction of each gene's SD; every other name is an INRRegressor parameter.
AXES = {
    "learning_rate": (1e-3, 1e-4, 1e-5),
    "n_frequencies": (0, 4, 10, 16),
    "hidden_features": (128, 256, 512),
    "n_layers": (4, 8, 12),
    "noise": (0.0, 0.1, 0.25, 0.5),
}

#: Training of every ablation variant besides its axis: the paper's selection (lowest
#: training loss) and a validation curve on 10 % of the training sites in 20 mm blocks.
ABLATION_TRAINING = dict(selection="training_loss", validation_fraction=0.1,
                         validation_block_mm=20.0)


def check_axes(axes) -> dict:
    """Validate an ``{axis: values}`` mapping against :data:`AXES` (InputError otherwise)."""
    axes = dict(axes)
    unknown = [a for a in axes if a not in AXES]
    if unknown or not axes:
        raise InputError(f"ablation axes must be among {', '.join(AXES)}; got {unknown or list(axes)}")
    for axis, values in axes.items():
        if not len(values):
            raise InputError(f"ablation axis {axis} has no values")
    return axes


def base_value(axis: str, base: dict) -> float:
    """The value of ``axis`` in the base configuration ``base`` (noise: 0)."""
    return 0.0 if axis == "noise" else base[axis]


def variants(axes, base: dict) -> dict:
    """Distinct configurations of a one-axis-at-a-time ablation.

    Parameters
    ----------
    axes : dict
        ``{axis: values}`` (see :data:`AXES`).
    base : dict
        INRRegressor parameters of the base configuration.

    Returns
    -------
    dict
        ``(inr_params_items, noise) -> [(axis, value), ...]``: each configuration is fitted
        once and reported under every axis it belongs to (the base belongs to all).
    """
    out: dict = {}
    for axis, values in axes.items():
        for value in values:
            params, noise = dict(base), 0.0
            if axis == "noise":
                noise = float(value)
            else:
                params[axis] = value
            out.setdefault((tuple(sorted(params.items())), noise), []).append((axis, value))
    return out


def add_noise(values, level: float, rng) -> np.ndarray:
    """Values plus Gaussian noise of SD ``level`` x each column's SD.

    Parameters
    ----------
    values : (n_sites, n_genes) array
        NaN (not measured) stays NaN.
    level : float
        Noise SD as a fraction of each gene's SD (0 returns a copy).
    rng : numpy Generator

    Returns
    -------
    (n_sites, n_genes) array
    """
    values = np.array(values, dtype=float)
    if level < 0:
        raise InputError(f"noise level must be >= 0, got {level!r}")
    if level == 0:
        return values
    sd = np.nanstd(values, axis=0)
    return values + rng.normal(size=values.shape) * (level * sd)


def score_split(estimator, data, split, noise: float = 0.0, random_state=0) -> tuple[pd.DataFrame, float]:
    """Fit ``estimator`` on the training sites of ``split``; score it at its held-out sites.

    Parameters
    ----------
    estimator : SampleInterpolator
        Unfitted; donors, tissue and the gene axis of ``data`` are passed as it accepts.
    data : BenchmarkData
    split : Split
    noise : float
        Noise added to the training values (fraction of each gene's SD; :func:`add_noise`).
    random_state : int
        Seeds the noise.

    Returns
    -------
    metrics : pandas.DataFrame
        One row per (target, gene): ``observed`` (the clean held-out values) and, on
        phantoms, ``truth``; the columns of :func:`~brainexpr.evaluation.metrics.gene_metrics`.
    fit_s : float
        Fitting time (s).
    """
    train, test = split.train, split.test
    values = add_noise(data.values.to_numpy(float)[train], noise, check_random_state(random_state))
    start = time.perf_counter()
    fit_samples(estimator, data.coords[train], values, tissue=data.tissue[train],
                gene_axis=data.gene_axis, donors=data.donors[train])
    fit_s = time.perf_counter() - start
    prediction = np.asarray(estimator.predict(data.coords[test], tissue=data.tissue[test]), dtype=float)
    references = [("observed", data.values.to_numpy(float)[test])]
    if data.truth_at_sites is not None:
        references.append(("truth", data.truth_at_sites.to_numpy(float)[test]))
    tables = []
    for target, reference in references:
        table = M.gene_metrics(prediction, reference, data.genes).reset_index()
        table = table.rename(columns={"index": "gene"})
        table.insert(0, "target", target)
        tables.append(table)
    return pd.concat(tables, ignore_index=True), fit_s


def history_frame(estimator) -> pd.DataFrame:
    """Loss curves of a fitted INRRegressor: (member, step, train_loss, validation_loss, kept)."""
    rows = [(member, int(step), float(train), float(validation), int(step) == estimator.best_step_[member])
            for member, history in enumerate(estimator.history_)
            for step, train, validation in history]
    return pd.DataFrame(rows, columns=["member", "step", "train_loss", "validation_loss", "kept"])


@dataclass
class AblationResult:
    """Tables of :func:`run_ablation`.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per (dataset, axis, value, fold, target, gene): ``pearson``, ``spearman``,
        ``mse``, ``r2``, ``n``, plus ``best_step`` and ``fit_s`` of that fit.
    curves : pandas.DataFrame
        One row per (dataset, axis, value, fold, step): ``train_loss`` (the training
        mini-batch) and ``validation_loss`` (the model's spatially held-out validation
        blocks), in standardised units, and ``kept`` (the selected step).
    settings : dict
    """

    metrics: pd.DataFrame
    curves: pd.DataFrame
    settings: dict = field(default_factory=dict)

    def summary_table(self) -> pd.DataFrame:
        """Mean per-gene r and R^2 over genes and folds, the kept step and the last losses.

        One row per (dataset, axis, value, target).
        """
        keys = ["dataset", "axis", "value", "target"]
        scores = (self.metrics.groupby(keys, sort=False)
                  .agg(pearson=("pearson", "mean"), r2=("r2", "mean"), best_step=("best_step", "mean"),
                       fit_s=("fit_s", "mean")).reset_index())
        last = (self.curves.sort_values("step").groupby(["dataset", "axis", "value", "fold"], sort=False)
                .tail(1).groupby(["dataset", "axis", "value"], sort=False)
                [["train_loss", "validation_loss"]].mean()
                .rename(columns={"train_loss": "final_train_loss",
                                 "validation_loss": "final_validation_loss"}).reset_index())
        table = scores.merge(last, on=["dataset", "axis", "value"], how="left")
        return table.iloc[self._order(table)].reset_index(drop=True)

    def _order(self, table) -> np.ndarray:
        """Row order: datasets as run, then axes and values as in ``settings["axes"]``."""
        ranks = {(axis, float(value)): (i, j) for i, (axis, values) in
                 enumerate(self.settings.get("axes", {}).items()) for j, value in enumerate(values)}
        datasets = {name: i for i, name in enumerate(pd.unique(table["dataset"]))}
        keys = [(datasets[d], *ranks.get((a, float(v)), (len(ranks), 0)), t)
                for d, a, v, t in zip(table["dataset"], table["axis"], table["value"], table["target"])]
        return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=int)

    @property
    def summary(self) -> dict:
        """Flat JSON-compatible dict: ``"phantom/n_layers/12/truth": mean r``."""
        table = self.summary_table()
        return {f"{row.dataset}/{row.axis}/{row.value:g}/{row.target}": round(float(row.pearson), 4)
                for row in table.itertuples() if np.isfinite(row.pearson)}


def run_ablation(datasets, axes=AXES, *, inr=None, n_folds: int = 5, max_folds: int | None = None,
                 block_size: float = 20.0, buffer: float = 8.0, random_state: int = 0) -> AblationResult:
    """Fit every one-axis variant of the paper's INR and score it on spatially held-out sites.

    Parameters
    ----------
    datasets : sequence of BenchmarkData
    axes : dict
        ``{axis: values}``, a subset of :data:`AXES` (default: all of Fig. 3).
    inr : dict, optional
        INRRegressor parameters overriding :data:`PAPER_INR` and :data:`ABLATION_TRAINING`
        in every variant (e.g. ``max_steps``, ``batch_size``, ``eval_every`` for a reduced
        run); an axis still overrides them.
    n_folds : int
        Folds of the spatially blocked split (``block_size`` mm blocks, ``buffer`` mm).
    max_folds : int, optional
        Score only the first ``max_folds`` folds (a reduced run; default: all).
    block_size, buffer : float
    random_state : int
        Seeds the folds, the noise and every model.

    Returns
    -------
    AblationResult
    """
    from ..models.inr import INRRegressor

    axes = check_axes(axes)
    base = {**PAPER_INR, **ABLATION_TRAINING, **(inr or {}), "random_state": random_state}
    configurations = variants(axes, base)
    metric_rows, curve_rows = [], []
    for data in datasets:
        splits = spatial_block_folds(data.coords, n_folds, block_size, buffer, random_state)
        splits = splits[:max_folds] if max_folds else splits
        bar = progress(total=len(configurations) * len(splits), desc=f"ablation {data.name}")
        for (items, noise), labels in configurations.items():
            for split in splits:
                estimator = INRRegressor(**dict(items))
                table, fit_s = score_split(estimator, data, split, noise, random_state)
                curves = history_frame(estimator)
                table["best_step"], table["fit_s"] = estimator.best_step_[0], fit_s
                logger.info("%s %s fold %s: mean r %.3f, kept step %d, fit %.0f s", data.name,
                            labels, split.name, table["pearson"].mean(), estimator.best_step_[0], fit_s)
                for axis, value in labels:
                    for frame, rows in ((table, metric_rows), (curves, curve_rows)):
                        frame = frame.copy()
                        for position, (column, entry) in enumerate((("dataset", data.name), ("axis", axis),
                                                                    ("value", float(value)),
                                                                    ("fold", split.name))):
                            frame.insert(position, column, entry)
                        rows.append(frame)
                bar.update()
        bar.close()
    settings = {"axes": {a: [float(v) for v in vs] for a, vs in axes.items()},
                "base": {k: v for k, v in base.items() if k != "random_state"},
                "n_folds": n_folds, "max_folds": max_folds, "block_size": block_size,
                "buffer": buffer, "random_state": random_state}
    return AblationResult(pd.concat(metric_rows, ignore_index=True),
                          pd.concat(curve_rows, ignore_index=True), settings)
