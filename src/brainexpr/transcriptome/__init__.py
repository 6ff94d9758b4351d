"""The whole transcriptome as one chunked gene atlas.

``build``  fit a model for every gene of a source and evaluate it on every voxel of a mask,
           block by block on Dask (local scheduler or a distributed cluster), into a Zarr v3
           store; resumable after a kill.
``store``  the store's layout, :func:`open_atlas` (an xarray Dataset backed by Dask).
``query``  questions asked of a store: maps of some genes (NIfTI), regional tables on an
           atlas, and every gene ranked against a user's map under spatial nulls.
"""

from .store import open_atlas

__all__ = ["open_atlas"]
