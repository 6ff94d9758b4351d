"""Workflow ``make_phantom_dataset``: phantom AHBA data with known truth, written to a folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib

from ..docstrings import fill_doc
from ..errors import InputError
from ..evaluation.phantom import make_phantom
from ..outputs import check_output_folder, output_folder
from ..utils import atomic_path

logger = logging.getLogger(__name__)

#: Columns of the sample table copied next to the phantom values.
SAMPLE_COLUMNS = ["well_id", "donor", "hemisphere", "structure_class", "corrected_mni_x",
                  "corrected_mni_y", "corrected_mni_z", "tissue_class", "dk_region"]


@fill_doc
def make_phantom_dataset(out_dir="phantom", *, n_genes: int = 20, resolutions=(1, 2),
                         noise: float = 0.4, reproducibility=(0.1, 0.9), n_anchors: int = 10,
                         symmetry: float = 0.0, random_state: int = 0, overwrite: bool = False,
                         data_dir=None):
    """Generate phantom AHBA data (:func:`brainexpr.evaluation.phantom.make_phantom`) and write it.

    Parameters
    ----------
    out_dir : path-like
        Output folder (replaced only once everything is written).
    n_genes : int
        Number of phantom genes.
    resolutions : sequence of {1, 2}
        Grids (mm) of the ground-truth volumes. A 1 mm volume holds
        ``182 * 218 * 182 * n_genes`` float32 values (29 MB per gene before compression).
    noise : float
        Measurement-noise SD in units of the truth SD.
    reproducibility : (float, float)
        Range of the target between-donor reproducibility (differential stability).
    n_anchors : int
        Real genes whose DK-83 profiles give the coarse patterns.
    symmetry : float in [0, 1]
        How far every component of the truth is pulled towards its left-right
        symmetric part (0: the default phantom; 1: exactly symmetric truths).
    random_state : int
        Seed (same seed, same phantom).
    %(overwrite)s
    %(data_dir)s

    Returns
    -------
    Phantom

    Files
    -----
    ``phantom_samples.csv`` (sites + observed values), ``phantom_truth-at-sites.csv``,
    ``phantom_genes.csv``, ``phantom_regional-truth.csv`` (DK-83), ``phantom_settings.json``
    and ``phantom_desc-truth_res-{1,2}mm.nii.gz`` (one volume per gene, 0 outside the brain).
    """
    resolutions = sorted({int(r) for r in resolutions})
    if not resolutions or any(r not in (1, 2) for r in resolutions):
        raise InputError(f"resolutions must be among 1 and 2 (mm), got {list(resolutions)}")
    check_output_folder(out_dir, "phantom", overwrite)
    phantom = make_phantom(n_genes, n_anchors=n_anchors, noise=noise, symmetry=symmetry,
                           reproducibility=tuple(reproducibility), random_state=random_state,
                           data_dir=data_dir)
    with output_folder(out_dir, "phantom", overwrite) as stage:
        stage = Path(stage)
        sites = phantom.samples[SAMPLE_COLUMNS].reset_index(drop=True)
        table = sites.join(phantom.values.reset_index(drop=True))
        table.to_csv(stage / "phantom_samples.csv", index=False)
        phantom.truth_at_sites.to_csv(stage / "phantom_truth-at-sites.csv")
        phantom.genes.to_csv(stage / "phantom_genes.csv")
        phantom.regional_truth().to_csv(stage / "phantom_regional-truth.csv")
        with open(stage / "phantom_settings.json", "w", encoding="utf-8") as handle:
            json.dump(phantom.settings, handle, indent=1)
        for resolution in resolutions:
            image = phantom.truth_volume(resolution, data_dir=data_dir)
            with atomic_path(stage / f"phantom_desc-truth_res-{resolution}mm.nii.gz") as tmp:
                nib.save(image, tmp)
            logger.info("wrote the %d mm truth volume (%s)", resolution, image.shape)
    logger.info("wrote phantom data to %s", out_dir)
    return phantom
