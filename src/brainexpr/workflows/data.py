"""Workflows about the reference data: status, download, summary."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..datasets import (DONORS, dataset_status, fetch_dataset, get_dataset, list_datasets,
                        load_gene_set, load_open_targets, load_pathology, load_regional_expression,
                        load_sample_celltypes)
from ..outputs import check_output_file, record_output_file
from ..utils import atomic_write

logger = logging.getLogger(__name__)


def list_dataset_status(data_dir=None) -> list[dict]:
    """Return presence, checksum status, description and citation of every dataset."""
    rows = []
    for name in list_datasets():
        status = dataset_status(name, data_dir=data_dir)
        status["description"] = get_dataset(name).description
        rows.append(status)
    return rows


def fetch_datasets(names, data_dir=None) -> list[Path]:
    """Download (when possible) and verify the named datasets; return their file paths."""
    paths = []
    for name in names:
        paths.extend(fetch_dataset(name, data_dir=data_dir))
    return paths


def summarise_data(out_dir=None, data_dir=None) -> dict:
    """Load every reference table, check it, and summarise what is there.

    Parameters
    ----------
    out_dir : path-like, optional
        When given, ``data_summary.json`` and ``data_summary.md`` are written there.
    data_dir : path-like, optional

    Returns
    -------
    dict
        Counts and shapes: regional table, samples per donor, tissue classes, cell types,
        gene-set coverage, pathology maps.
    """
    if out_dir is not None:  # checked before the (slow) loading
        targets = {name: check_output_file(Path(out_dir) / name)
                   for name in ("data_summary.json", "data_summary.md")}
    regional = load_regional_expression(data_dir=data_dir)
    samples, celltypes = load_sample_celltypes(data_dir=data_dir)
    ad_genes = load_gene_set("ad", data_dir=data_dir)
    l1000 = load_gene_set("l1000", data_dir=data_dir)
    open_targets = load_open_targets(data_dir=data_dir)
    pathology = load_pathology(data_dir=data_dir)
    genes = set(regional.columns)
    summary = {
        "regional_expression": {"regions": regional.shape[0], "genes": regional.shape[1]},
        "samples": {
            "total": len(samples),
            "per_donor": {d: int(n) for d, n in samples["donor"].value_counts()
                          .reindex(DONORS["donor"]).items()},
            "tissue_class": {str(k): int(v) for k, v in samples["tissue_class"].value_counts()
                             .sort_index().items()},
            "structure_class": {k: int(v) for k, v in samples["structure_class"].value_counts().items()},
            "hemisphere": {k: int(v) for k, v in samples["hemisphere"].value_counts().items()},
        },
        "cell_types": {"columns": list(celltypes.columns),
                       "mean_fraction": {k: round(float(v), 4) for k, v in celltypes.mean().items()}},
        "gene_sets": {
            "ad": {"size": len(ad_genes), "in_regional_table": len(genes & set(ad_genes)),
                   "absent": sorted(set(ad_genes) - genes)},
            "l1000": {"size": len(l1000), "in_regional_table": len(genes & set(l1000))},
            "open_targets_ad": {"targets": int(open_targets.size),
                                "ad_genes_scored": int(open_targets.index.isin(ad_genes).sum())},
        },
        "pathology": {"regions": pathology.shape[0],
                      "maps": [c for c in pathology.columns if c not in ("adni86", "lobe_code")]},
    }
    if out_dir is not None:
        for name, text in (("data_summary.json", json.dumps(summary, indent=1)),
                           ("data_summary.md", _summary_markdown(summary))):
            with atomic_write(targets[name]) as handle:
                handle.write(text)
            record_output_file(targets[name], "info")
        out = Path(out_dir)
        logger.info("wrote %s", out / "data_summary.json")
    return summary


def _summary_markdown(summary: dict) -> str:
    s = summary
    lines = [
        "# Reference data summary", "",
        f"- Regional expression: {s['regional_expression']['regions']} Desikan-Killiany regions x "
        f"{s['regional_expression']['genes']} genes",
        f"- AHBA samples: {s['samples']['total']} "
        f"({', '.join(f'{d}: {n}' for d, n in s['samples']['per_donor'].items())})",
        f"- Tissue class (grey 1 / white -1 / other 0): {s['samples']['tissue_class']}",
        f"- Cell types: {', '.join(s['cell_types']['columns'])}",
        f"- AD genes: {s['gene_sets']['ad']['size']} listed, "
        f"{s['gene_sets']['ad']['in_regional_table']} in the regional table "
        f"(absent: {', '.join(s['gene_sets']['ad']['absent']) or 'none'})",
        f"- L1000 landmark genes in the regional table: {s['gene_sets']['l1000']['in_regional_table']}",
        f"- ADNI pathology maps on {s['pathology']['regions']} regions: {', '.join(s['pathology']['maps'])}",
        "",
    ]
    return "\n".join(lines)
