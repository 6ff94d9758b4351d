"""Workflows about the reference data: status, download, summary."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..atlas.tissue import with_tissue_class
from ..datasets import (DONORS, clear_download_cache, dataset_status, fetch_dataset, get_dataset,
                        is_offline, list_datasets, load_gene_set, load_open_targets,
                        load_pathology, load_regional_expression, load_sample_celltypes,
                        plan_fetch)
from ..datasets.download import DownloadError
from ..docstrings import fill_doc
from ..errors import DataNotFoundError
from ..outputs import check_output_file, record_output_file
from ..utils import atomic_write

logger = logging.getLogger(__name__)


def list_dataset_status(data_dir=None) -> list[dict]:
    """Return presence, checksum status, description, manual step and citation of every dataset."""
    rows = []
    for name in list_datasets():
        status = dataset_status(name, data_dir=data_dir)
        status["description"] = get_dataset(name).description
        status["manual"] = get_dataset(name).manual
        rows.append(status)
    return rows


@fill_doc
def fetch_datasets(names, data_dir=None, *, base_url=None, opener=None) -> list[Path]:
    """Download what is missing of the named datasets, verify it, return all their paths.

    Parameters
    ----------
    names : sequence of str
        Dataset names, or ``["all"]`` for every registered dataset.
    %(data_dir)s
    base_url : str, optional
        Mirror tried first (default: ``BRAINEXPR_MIRROR``).
    opener : callable, optional
        Replaces :func:`urllib.request.urlopen` (tests).

    Raises
    ------
    DownloadError
        After every dataset was tried, naming those that stay incomplete and why.
    """
    names = list_datasets() if list(names) == ["all"] else list(names)
    plan = plan_fetch(names, data_dir=data_dir, base_url=base_url)
    if plan.missing:
        logger.info("%s", plan.describe())
    paths, failures = [], []
    for name in names:
        try:
            paths.extend(fetch_dataset(name, data_dir=data_dir, base_url=base_url, opener=opener))
        except DownloadError as exc:
            failures.append(str(exc))
    clear_download_cache(data_dir)
    if failures:
        raise DownloadError(" || ".join(failures), retry=False)
    return paths


@fill_doc
def ensure_datasets(names, data_dir=None, *, offline=None, base_url=None, opener=None) -> list[str]:
    """Make sure the named datasets are present and verified, downloading what is missing.

    Parameters
    ----------
    names : sequence of str
    %(data_dir)s
    offline : bool, optional
        Never download; default ``BRAINEXPR_OFFLINE``.
    base_url, opener :
        As :func:`fetch_datasets`.

    Returns
    -------
    list of str
        The datasets that were downloaded (empty when all were present).

    Raises
    ------
    DataNotFoundError
        Offline with missing datasets: one line listing them.
    DownloadError
        A download failed or a dataset needs a manual step.
    """
    missing = [n for n in names if not dataset_status(n, data_dir=data_dir)["verified"]]
    if not missing:
        return []
    if is_offline(offline):
        raise DataNotFoundError(
            f"offline, and {len(missing)} reference dataset(s) are missing or corrupted: "
            f"{', '.join(missing)}; run 'brainexpr fetch {' '.join(missing)}' with internet "
            f"access, or point --data-dir / BRAINEXPR_DATA to a folder that has them")
    fetch_datasets(missing, data_dir=data_dir, base_url=base_url, opener=opener)
    return missing


@fill_doc
def summarise_data(out_dir=None, data_dir=None) -> dict:
    """Load every reference table, check it, and summarise what is there.

    Parameters
    ----------
    out_dir : path-like, optional
        When given, ``data_summary.json`` and ``data_summary.md`` are written there.
    %(data_dir)s

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
    samples = with_tissue_class(samples, data_dir)
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
