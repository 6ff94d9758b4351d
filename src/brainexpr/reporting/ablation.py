"""Tables, figure and summary of an ablation run (``brainexpr benchmark --ablation``).

:func:`write_ablation_outputs` writes an
:class:`~brainexpr.evaluation.ablation.AblationResult` into a folder:

* ``ablation_metrics.csv`` (per dataset, axis, value, fold, target, gene),
  ``ablation_curves.csv`` (loss per step), ``ablation_summary.csv`` (means);
* ``ablation.json``: settings and the summary;
* ``figures/ablation_<dataset>.{png,svg}``: one column per axis; the training-loss curves,
  the spatially held-out validation-loss curves and the held-out accuracy of each value;
* ``ablation.md``: the summary table.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..evaluation.ablation import PAPER_INR, base_value
from ..utils import atomic_write
from .benchmark import FIGURE_DPI, _markdown_table, write_tables
from .figures import pyplot as _pyplot
from .figures import save_figure

logger = logging.getLogger(__name__)

#: Axis titles of the figure and the summary.
AXIS_LABELS = {"learning_rate": "learning rate", "n_frequencies": "encoding frequencies N",
               "hidden_features": "width", "n_layers": "depth", "noise": "added noise (x gene SD)"}


def plot_ablation(result, dataset: str, path) -> list[Path]:
    """Loss curves next to held-out accuracy, one column per ablation axis.

    Rows: training loss (mini-batch, log scale), loss on the model's spatially held-out
    validation blocks, and mean per-gene Pearson r at the held-out sites of the blocked
    folds (against the held-out values and, on phantoms, the truth).
    """
    plt = _pyplot()
    curves = result.curves[result.curves["dataset"] == dataset]
    summary = result.summary_table()
    summary = summary[summary["dataset"] == dataset]
    axes_names = list(result.settings["axes"])
    figure, grid = plt.subplots(3, len(axes_names), figsize=(3.6 * len(axes_names), 9), squeeze=False)
    for column, axis in enumerate(axes_names):
        values = result.settings["axes"][axis]
        colours = plt.cm.viridis(np.linspace(0, 0.9, len(values)))
        for value, colour in zip(values, colours):
            mean = (curves[(curves["axis"] == axis) & (curves["value"] == value)]
                    .groupby("step")[["train_loss", "validation_loss"]].mean())
            for row, loss in enumerate(("train_loss", "validation_loss")):
                grid[row, column].plot(mean.index, mean[loss], color=colour, label=f"{value:g}")
        for row, title in enumerate(("training loss", "spatially held-out validation loss")):
            grid[row, column].set_yscale("log")
            grid[row, column].set_xlabel("step")
            grid[row, column].set_title(f"{AXIS_LABELS[axis]}: {title}", fontsize=9)
        grid[0, column].legend(fontsize=7, title=AXIS_LABELS[axis], title_fontsize=7)
        bottom = grid[2, column]
        for target, marker in (("observed", "o"), ("truth", "s")):
            rows = summary[(summary["axis"] == axis) & (summary["target"] == target)]
            if len(rows):
                scores = rows.set_index("value")["pearson"].reindex([float(v) for v in values])
                bottom.plot(range(len(values)), scores.to_numpy(), marker=marker, label=f"r vs {target}")
        bottom.set_xticks(range(len(values)), [f"{v:g}" for v in values])
        base = base_value(axis, {**PAPER_INR, **result.settings["base"]})
        bottom.set_xlabel(f"{AXIS_LABELS[axis]} (paper: {base:g})")
        bottom.set_ylabel("mean r at held-out sites")
        bottom.set_title("held-out accuracy (blocked folds)", fontsize=9)
        bottom.legend(fontsize=7)
    figure.suptitle(f"{dataset}: the paper's Fig. 3 axes, training loss vs held-out accuracy")
    figure.tight_layout()
    return save_figure(figure, path, dpi=FIGURE_DPI)


def ablation_markdown(result) -> str:
    """Summary table (mean r per axis value and target, kept step, last losses) in markdown."""
    s = result.settings
    table = result.summary_table()
    table["axis"] = table["axis"].map(AXIS_LABELS)
    table["value"] = table["value"].map("{:g}".format)
    lines = ["# Ablation of the paper's INR (Fig. 3 axes) on spatially held-out sites", "",
             f"Base: {s['base']}. Folds: {s['max_folds'] or s['n_folds']} of {s['n_folds']} "
             f"spatially blocked ({s['block_size']} mm blocks, {s['buffer']} mm buffer).", "",
             "pearson / r2: mean per-gene value at the held-out sites of the folds; best_step: the "
             "state kept (lowest training loss); final losses in standardised units.", "",
             _markdown_table(table), ""]
    return "\n".join(lines)


def write_ablation_outputs(result, out_dir, figures: bool = True) -> dict:
    """Write tables, figures, JSON and markdown of an ablation into ``out_dir``.

    Returns
    -------
    dict
        Name -> path of every file written.
    """
    out = Path(out_dir)
    written = write_tables(out, {"ablation_metrics.csv": result.metrics,
                                 "ablation_curves.csv": result.curves,
                                 "ablation_summary.csv": result.summary_table()})
    with atomic_write(out / "ablation.json") as handle:
        json.dump({"settings": result.settings, "summary": result.summary}, handle, indent=1, default=str)
    written["ablation.json"] = out / "ablation.json"
    with atomic_write(out / "ablation.md") as handle:
        handle.write(ablation_markdown(result))
    written["ablation.md"] = out / "ablation.md"
    if figures:
        for dataset in result.metrics["dataset"].unique():
            for path in plot_ablation(result, dataset, out / "figures" / f"ablation_{dataset}.png"):
                written[path.name] = path
    logger.info("wrote %d ablation files to %s", len(written), out)
    return written
