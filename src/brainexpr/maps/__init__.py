"""Dense maps from fitted models: NIfTI volumes on MNI152 masks and atlas region averages."""

from .dense import (NAMED_MASKS, VoxelGrid, gene_label, map_filename, predict_dense,
                    resolve_mask, stack_filename, voxel_grid, write_maps)
from .regional import parcellate_model

__all__ = [
    "NAMED_MASKS", "VoxelGrid", "gene_label", "map_filename", "parcellate_model",
    "predict_dense", "resolve_mask", "stack_filename", "voxel_grid", "write_maps",
]
