"""brainexpr: continuous maps of human brain gene expression from the Allen Human Brain Atlas.

The package is organised as the pipeline it implements::

    datasets/    reference data: registry, checksums, loaders, region-name harmonisation
    atlas/       MNI152 space: grids, masks, tissue class, sample-to-parcel matching, parcellation
    ahba/        the raw Allen microarray pipeline (probes, samples, normalisation, regions)
    geneaxis/    spectral embedding of genes onto a 1-D "gene axis"
    models/      nn.Modules (SIREN, encodings) and estimators (INR, kNN, kriging)
    maps/        dense voxel maps, NIfTI writing, regional tables
    transcriptome/  the gene atlas of every gene: Dask build into Zarr, queries
    evaluation/  phantoms with known truth, held-out protocols, metrics, the benchmark
    analysis/    disease association with spatial nulls, cross-scale VAE
    reporting/   figures, HTML report, Methods text
    cli/         the ``brainexpr`` command (thin wrappers over the workflows)

Logging goes through ``logging.getLogger(__name__)``; the library never configures handlers.
"""

import logging

from ._version import __version__
from .errors import BrainexprError

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "BrainexprError", "open_atlas"]


def __getattr__(name):
    # brainexpr.open_atlas without importing xarray and zarr at ``import brainexpr``
    if name == "open_atlas":
        from .transcriptome import open_atlas

        return open_atlas
    raise AttributeError(f"module 'brainexpr' has no attribute {name!r}")
