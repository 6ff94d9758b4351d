"""Workflow: process a raw AHBA download into an output folder (``brainexpr ahba``)."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from ..ahba.io import DONOR_TABLE, PROCESSED_FILES, write_processed
from ..ahba.pipeline import process_ahba
from ..outputs import check_output_folder, output_folder

logger = logging.getLogger(__name__)


def process_ahba_download(raw_dir, out_dir, *, atlas="dk83", atlas_info=None, ibf_threshold=0.5,
                          probe_selection="diff_stability", donor_probes="aggregate",
                          sim_threshold=None, lr_mirror=None, missing=None, tolerance=2.0,
                          sample_norm="srs", gene_norm="srs", norm_matched=True,
                          norm_structures=False, region_agg="donors", agg_metric="mean",
                          corrected_mni=True, reannotated=True, donors="all", cache_dir=None,
                          use_cache=True, overwrite=False, data_dir=None) -> dict:
    """Run the AHBA pipeline on a raw download and write its outputs to ``out_dir``.

    The keyword arguments are those of :func:`brainexpr.ahba.process_ahba` (abagen's option
    names and defaults) plus ``out_dir`` and ``overwrite``. The folder is written through a
    staging folder, so a failure leaves no partial output.

    Outputs (see :class:`brainexpr.ahba.ProcessedAHBA`; read them back with
    :func:`brainexpr.ahba.load_processed`):

    * ``samples.csv``: one row per sample (well id, donor, coordinates, region, tissue class);
    * ``expression.npy``: the (n_samples, n_genes) float32 matrix (memory-mappable);
    * ``genes.csv``: gene, Entrez id, selected probe, differential stability;
    * ``regional_expression.csv`` and ``regional_expression_donor-{uid}.csv``: regions x
      genes, index = region keys;
    * ``sample_counts.csv``, ``methods.md`` (the Methods paragraph), ``provenance.json``.

    Returns
    -------
    dict
        ``out_dir``, ``n_samples``, ``n_genes``, ``n_regions``, ``donors``, ``cache_hit``,
        ``seconds``.
    """
    started = time.perf_counter()
    out = Path(out_dir).expanduser()
    check_output_folder(out, "ahba", overwrite)
    result = process_ahba(raw_dir, atlas=atlas, atlas_info=atlas_info, ibf_threshold=ibf_threshold,
                          probe_selection=probe_selection, donor_probes=donor_probes,
                          sim_threshold=sim_threshold, lr_mirror=lr_mirror, missing=missing,
                          tolerance=tolerance, sample_norm=sample_norm, gene_norm=gene_norm,
                          norm_matched=norm_matched, norm_structures=norm_structures,
                          region_agg=region_agg, agg_metric=agg_metric,
                          corrected_mni=corrected_mni, reannotated=reannotated, donors=donors,
                          cache_dir=cache_dir, use_cache=use_cache, data_dir=data_dir)
    cached = result.provenance.get("cache_folder")
    with output_folder(out, "ahba", overwrite) as stage:
        if cached and Path(cached).is_dir():
            names = list(PROCESSED_FILES.values()) + [
                DONOR_TABLE.format(uid=uid) for uid in result.regional_donors]
            for name in names:
                source = Path(cached) / name
                if source.is_file():
                    shutil.copyfile(source, stage / name)
        else:
            write_processed(result, stage)
    summary = {
        "out_dir": str(out),
        "n_samples": int(result.expression.shape[0]),
        "n_genes": int(result.expression.shape[1]),
        "n_regions": None if result.regional is None else int(result.regional.shape[0]),
        "donors": [int(d) for d in result.provenance.get("donors", [])],
        "cache_hit": bool(result.provenance.get("cache_hit", False)),
        "seconds": round(time.perf_counter() - started, 2),
    }
    logger.info("wrote %s (%d samples x %d genes)", out, summary["n_samples"], summary["n_genes"])
    return summary
