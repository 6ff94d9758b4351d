"""Figures, tables and the markdown summary of a benchmark run.

:func:`write_benchmark_outputs` writes everything of a
:class:`~brainexpr.evaluation.benchmark.BenchmarkResult` into a folder:

* ``metrics.csv`` (per gene), ``summary.csv``, ``by_reproducibility.csv``,
  ``aggregate_regional.csv``, ``timings.csv``, ``ceilings.csv``, ``held_out_predictions.csv``;
* ``benchmark.json``: settings and the headline table;
* ``figures/accuracy_distributions.{png,svg}``: per-gene accuracy of each method;
* ``figures/held_out_scatter.{png,svg}``: predicted vs true at held-out sites;
* ``figures/slices.{png,svg}``: brain slices of the truth, each method and its error;
* ``summary.md``: the tables and a verdict per comparison, computed from the numbers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils import atomic_path, atomic_write
from .figures import pyplot as _pyplot
from .figures import save_figure

logger = logging.getLogger(__name__)

#: (dataset, protocol, target) panels of the accuracy figure and the headline table.
HEADLINE = [
    ("phantom", "blocked", "truth", "Phantom, spatially blocked CV: r with truth at held-out sites"),
    ("phantom", "donor", "truth", "Phantom, leave-one-donor-out: r with truth at the donor's sites"),
    ("phantom", "map", "truth", "Phantom, map from all samples: r with truth over brain voxels"),
    ("celltypes", "blocked", "observed", "Real cell types, spatially blocked CV: r with held-out values"),
    ("celltypes", "donor", "observed", "Real cell types, leave-one-donor-out: r with the donor's values"),
    ("phantom", "genes", "truth", "Phantom, leave-genes-out: r with truth at all sites for withheld genes"),
    ("phantom", "parcels", "regional_truth", "Phantom, leave-parcels-out: r across held-out parcels "
                                             "with the true parcel means"),
    ("celltypes", "parcels", "regional_observed", "Real cell types, leave-parcels-out: r across "
                                                  "held-out parcels with their observed means"),
]

#: Resolution of the benchmark and ablation figures (dots per inch).
FIGURE_DPI = 150

#: Two methods tie when their per-gene mean difference is below this (Pearson r units).
TIE_MARGIN = 0.005


def _methods_in_order(result) -> list[str]:
    return [m for m in result.settings.get("methods", []) if m in set(result.metrics["method"])]


# --------------------------------------------------------------------------- figures
def plot_accuracy_distributions(result, path) -> list[Path]:
    """Box plots of per-gene Pearson r by method, one panel per headline comparison."""
    plt = _pyplot()
    panels = [h for h in HEADLINE if ((result.metrics["dataset"] == h[0]) & (result.metrics["protocol"] == h[1])
                                      & (result.metrics["target"] == h[2])).any()]
    methods = _methods_in_order(result)
    figure, axes = plt.subplots(len(panels), 1, figsize=(max(6, 0.9 * len(methods) + 2), 2.6 * len(panels)),
                                squeeze=False)
    for ax, (dataset, protocol, target, title) in zip(axes[:, 0], panels):
        table = result.metrics[(result.metrics["dataset"] == dataset) & (result.metrics["protocol"] == protocol)
                               & (result.metrics["target"] == target)]
        present = [m for m in methods if m in set(table["method"])]
        data = [table.loc[table["method"] == m, "pearson"].dropna().to_numpy() for m in present]
        ax.boxplot(data, showmeans=True, widths=0.6)
        ax.set_xticks(range(1, len(present) + 1), present, rotation=20, ha="right", fontsize=8)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel("Pearson r per gene")
        ax.set_title(title, fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path, dpi=FIGURE_DPI)


def plot_held_out_scatter(result, path) -> list[Path]:
    """Predicted vs true (phantom) or observed (real) values at held-out sites, per method."""
    plt = _pyplot()
    table = result.held_out
    if table.empty:
        return []
    datasets = list(pd.unique(table["dataset"]))
    methods = [m for m in _methods_in_order(result) if m in set(table["method"])]
    figure, axes = plt.subplots(len(datasets), len(methods), figsize=(2.2 * len(methods), 2.3 * len(datasets)),
                                squeeze=False, sharex="row", sharey="row")
    for row, dataset in enumerate(datasets):
        for col, method in enumerate(methods):
            ax = axes[row, col]
            part = table[(table["dataset"] == dataset) & (table["method"] == method)]
            reference = part["truth"] if part["truth"].notna().any() else part["observed"]
            ax.scatter(reference, part["predicted"], s=2, alpha=0.3, rasterized=True)
            finite = np.isfinite(reference) & np.isfinite(part["predicted"])
            if finite.sum() > 2:
                r = np.corrcoef(reference[finite], part["predicted"][finite])[0, 1]
                ax.set_title(f"{method}\nr = {r:.2f}", fontsize=8)
            low, high = np.nanpercentile(np.r_[reference, part["predicted"]], [0.5, 99.5])
            ax.plot([low, high], [low, high], color="k", lw=0.6)
            if col == 0:
                ax.set_ylabel(f"{dataset}\npredicted", fontsize=8)
            ax.set_xlabel("truth" if part["truth"].notna().any() else "observed", fontsize=8)
            ax.tick_params(labelsize=7)
    figure.tight_layout()
    return save_figure(figure, path, dpi=FIGURE_DPI)


def plot_slices(result, path) -> list[Path]:
    """Slices of one phantom gene: truth, each method's map and its error."""
    plt = _pyplot()
    if "truth" not in result.slices:
        return []
    methods = [m for m in _methods_in_order(result) if m in result.slices]
    views = list(result.slices["truth"])
    truth = result.slices["truth"]
    low, high = np.nanpercentile(np.concatenate([v.ravel() for v in truth.values()]), [1, 99])
    spread = high - low
    rows = ["truth"] + methods
    figure, axes = plt.subplots(len(rows), 2 * len(views), figsize=(2.0 * 2 * len(views), 1.9 * len(rows)),
                                squeeze=False)
    for r, name in enumerate(rows):
        for v, view in enumerate(views):
            image = result.slices[name][view]
            ax = axes[r, v]
            shown = ax.imshow(np.rot90(image), cmap="viridis", vmin=low, vmax=high)
            ax.set_axis_off()
            if r == 0:
                ax.set_title(view, fontsize=8)
            if v == 0:
                ax.text(-0.05, 0.5, name, transform=ax.transAxes, ha="right", va="center", fontsize=8)
            err_ax = axes[r, len(views) + v]
            err_ax.set_axis_off()
            if r == 0:
                err_ax.set_title(f"error ({view})", fontsize=8)
            else:
                error = err_ax.imshow(np.rot90(image - truth[view]), cmap="RdBu_r", vmin=-spread / 2,
                                      vmax=spread / 2)
    figure.colorbar(shown, ax=axes[:, :len(views)].ravel().tolist(), shrink=0.5, label="expression")
    if methods:
        figure.colorbar(error, ax=axes[:, len(views):].ravel().tolist(), shrink=0.5, label="prediction - truth")
    figure.suptitle(f"phantom gene {result.slices.get('gene', '')}: truth, maps and errors (2 mm)", fontsize=9)
    return save_figure(figure, path, dpi=FIGURE_DPI)


# --------------------------------------------------------------------------- tables
def headline_table(result) -> pd.DataFrame:
    """Mean per-gene Pearson r (and R^2) of each method in each headline comparison."""
    rows = []
    for dataset, protocol, target, title in HEADLINE:
        part = result.metrics[(result.metrics["dataset"] == dataset) & (result.metrics["protocol"] == protocol)
                              & (result.metrics["target"] == target)]
        if part.empty:
            continue
        for method, group in part.groupby("method", sort=False):
            rows.append({"dataset": dataset, "protocol": protocol, "target": target, "method": method,
                         "pearson": group["pearson"].mean(), "r2": group["r2"].mean(),
                         "mse": group["mse"].mean(), "n_genes": int(group["pearson"].notna().sum())})
    return pd.DataFrame(rows, columns=["dataset", "protocol", "target", "method", "pearson", "r2", "mse",
                                       "n_genes"])


def compare(result, method: str, reference: str, dataset: str, protocol: str, target: str) -> dict:
    """Paired per-gene comparison of two methods: mean difference, genes won, verdict."""
    part = result.metrics[(result.metrics["dataset"] == dataset) & (result.metrics["protocol"] == protocol)
                          & (result.metrics["target"] == target)]
    a = part[part["method"] == method].set_index("gene")["pearson"]
    b = part[part["method"] == reference].set_index("gene")["pearson"]
    both = a.index.intersection(b.index)
    if len(both) == 0:
        return {}
    diff = (a.loc[both] - b.loc[both]).dropna()
    if diff.empty:
        return {}
    mean = float(diff.mean())
    verdict = "ties with" if abs(mean) < TIE_MARGIN else ("wins over" if mean > 0 else "loses to")
    return {"method": method, "reference": reference, "dataset": dataset, "protocol": protocol,
            "target": target, "mean_difference": mean, "genes_better": int((diff > 0).sum()),
            "n_genes": int(len(diff)), "verdict": verdict}


def _fmt(value, digits=3):
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(v) if isinstance(v, (float, np.floating)) else str(v)
                                       for v in row.to_numpy()) + " |")
    return "\n".join(lines)


def benchmark_markdown(result) -> str:
    """The markdown summary: headline tables, regional agreement, inflation, verdicts."""
    s = result.settings
    methods = _methods_in_order(result)
    lines = ["# Benchmark: accuracy on held-out data", ""]
    lines.append(f"Methods: {', '.join(methods)}. Protocols: {', '.join(s.get('protocols', []))}; "
                 f"{s.get('n_folds')} folds; blocks of {s.get('block_size')} mm with a {s.get('buffer')} mm "
                 f"exclusion buffer; {s.get('map_voxels')} random 2 mm brain voxels for map accuracy"
                 f"{' (quick run)' if s.get('quick') else ''}.")
    lines.append("")
    for m in methods:
        ran = ", ".join(s.get("method_protocols", {}).get(m, []))
        lines.append(f"- **{m}**: {s.get('method_descriptions', {}).get(m, '')} (protocols: {ran})")
    lines.append("")
    times = result.timings.set_index(["dataset", "method", "protocol"])
    head = headline_table(result)
    for dataset, protocol, target, title in HEADLINE:
        part = head[(head["dataset"] == dataset) & (head["protocol"] == protocol) & (head["target"] == target)]
        if part.empty:
            continue
        lines += [f"## {title}", ""]
        table = part[["method", "pearson", "r2", "mse", "n_genes"]].copy()
        for column, label in (("n_fits", "fits"), ("fit_s", "fit s"), ("predict_s", "predict s")):
            table[label] = [times.loc[(dataset, m, protocol), column] if (dataset, m, protocol) in times.index
                            else np.nan for m in table["method"]]
        lines += [_markdown_table(table.sort_values("pearson", ascending=False)), ""]
        if protocol == "donor":
            ceiling = result.ceilings[result.ceilings["dataset"] == dataset]["ceiling"].mean()
            regional = result.metrics[(result.metrics["dataset"] == dataset) & (result.metrics["protocol"] == "donor")
                                      & (result.metrics["target"] == "regional_observed")]
            reg = regional.groupby("method", sort=False)["pearson"].mean()
            lines.append("Regional profile of the held-out donor (DK-83 means of its samples), mean r per gene: "
                         + ", ".join(f"{m} {_fmt(v)}" for m, v in reg.items())
                         + ". Ceiling implied by the between-donor reproducibility, mean sqrt(DS): "
                           f"{_fmt(ceiling)}.")
            lines.append("")
    # regional agreement and inflation
    agg = result.aggregate[result.aggregate["protocol"] == "map"]
    if not agg.empty:
        lines += ["## Regional agreement (the paper's validation) and the whole-volume inflation", ""]
        rows = []
        phantom = result.metrics[(result.metrics["dataset"] == "phantom") & (result.metrics["protocol"] == "map")]
        for method in ["abagen-style regional means"] + methods:
            part = phantom[phantom["method"] == method]
            if part.empty:
                continue
            get = lambda t: part.loc[part["target"] == t, "pearson"].mean()  # noqa: E731
            aggregate = lambda t: agg.loc[(agg["method"] == method) & (agg["target"] == t), "aggregate_r"]  # noqa: E731
            rows.append({"method": method,
                         "voxel r within brain": get("truth"),
                         "whole-volume r with background": get("whole_volume_truth"),
                         "regional r vs truth (per gene)": get("regional_truth"),
                         "aggregate regional r vs truth": aggregate("regional_truth").mean() if len(aggregate("regional_truth")) else np.nan,
                         "regional r vs abagen-style (per gene)": get("regional_abagen_style"),
                         "aggregate r vs abagen-style": aggregate("regional_abagen_style").mean() if len(aggregate("regional_abagen_style")) else np.nan})
        lines += [_markdown_table(pd.DataFrame(rows)), ""]
        lines.append("Whole-volume r counts the background zeros of both images (as the reference study's "
                     "\"voxel-wise R = 0.98\"); the within-brain r is the honest number. Agreement with "
                     "abagen-style regional means is agreement with the same noisy samples, not accuracy.")
        lines.append("")
    calibration = calibration_summary(result)
    if not calibration.empty:
        lines += ["## Calibration of the standard deviations", ""]
        lines.append("Methods that give an SD, held-out sites pooled over folds, mean over genes: "
                     "coverage of the central 50 / 90 / 95 % Gaussian intervals, SD / RMSE (1 = the "
                     "right width on average), Spearman of the SD with the absolute error, CRPS and "
                     "Gaussian NLL. `sample` SDs (a new donor's value: donor deviation and nugget "
                     "included) against held-out observations; `population` SDs (the map) against "
                     "the phantom truth.")
        lines += ["", _markdown_table(calibration), ""]
    bins = result.by_reproducibility()
    if not bins.empty:
        lines += ["## Mean r by reproducibility (differential stability) bin", ""]
        keep = bins[bins["protocol"].isin(["blocked", "donor", "map"])
                    & bins["target"].isin(["truth", "observed"])]
        lines += [_markdown_table(keep), ""]
    # verdicts
    verdicts = verdict_table(result)
    if not verdicts.empty:
        lines += ["## Where the INRs win, lose or tie (paired per-gene r against the best baseline)", ""]
        lines += [_markdown_table(verdicts), ""]
    return "\n".join(lines)


BASELINES = ("nearest", "knn", "abagen", "kriging", "kriging-mirrored")


def calibration_summary(result) -> pd.DataFrame:
    """Mean calibration metrics per dataset, method, protocol, target and SD kind."""
    from ..evaluation.metrics import CALIBRATION_METRICS

    table = getattr(result, "calibration", None)
    if table is None or table.empty:
        return pd.DataFrame()
    keys = ["dataset", "method", "protocol", "target", "kind"]
    return table.groupby(keys, sort=False)[list(CALIBRATION_METRICS)].mean().reset_index()


def verdict_table(result) -> pd.DataFrame:
    """Each non-baseline method against the best baseline of each headline comparison."""
    head = headline_table(result)
    rows = []
    for dataset, protocol, target, _ in HEADLINE:
        part = head[(head["dataset"] == dataset) & (head["protocol"] == protocol) & (head["target"] == target)]
        base = part[part["method"].isin(BASELINES)]
        if base.empty:
            continue
        best = base.sort_values("pearson", ascending=False)["method"].iloc[0]
        for method in part["method"]:
            if method in BASELINES:
                continue
            row = compare(result, method, best, dataset, protocol, target)
            if row:
                rows.append(row)
    return pd.DataFrame(rows, columns=["method", "reference", "dataset", "protocol", "target",
                                       "mean_difference", "genes_better", "n_genes", "verdict"])


# --------------------------------------------------------------------------- writer
def write_tables(out: Path, tables: dict) -> dict:
    """Write ``{file name: DataFrame}`` as CSV files (no index) into ``out``; name -> path."""
    written = {}
    for name, table in tables.items():
        with atomic_path(out / name) as tmp:
            table.to_csv(tmp, index=False)
        written[name] = out / name
    return written


def write_benchmark_outputs(result, out_dir, figures: bool = True) -> dict:
    """Write tables, figures, JSON and markdown of a benchmark into ``out_dir``.

    Returns
    -------
    dict
        Name -> path of every file written.
    """
    out = Path(out_dir)
    written = write_tables(out, {
        "metrics.csv": result.metrics, "summary.csv": result.summary_table(),
        "by_reproducibility.csv": result.by_reproducibility(),
        "aggregate_regional.csv": result.aggregate, "timings.csv": result.timings,
        "ceilings.csv": result.ceilings, "held_out_predictions.csv": result.held_out,
        "calibration.csv": result.calibration,
    })
    head = headline_table(result)
    with atomic_write(out / "benchmark.json") as handle:
        json.dump({"settings": result.settings,
                   "headline": json.loads(head.to_json(orient="records")),
                   "verdicts": json.loads(verdict_table(result).to_json(orient="records"))},
                  handle, indent=1, default=str)
    written["benchmark.json"] = out / "benchmark.json"
    with atomic_write(out / "summary.md") as handle:
        handle.write(benchmark_markdown(result))
    written["summary.md"] = out / "summary.md"
    if figures:
        figure_dir = out / "figures"
        for name, plot in (("accuracy_distributions", plot_accuracy_distributions),
                           ("held_out_scatter", plot_held_out_scatter), ("slices", plot_slices)):
            for path in plot(result, figure_dir / f"{name}.png"):
                written[path.name] = path
    logger.info("wrote %d benchmark files to %s", len(written), out)
    return written
