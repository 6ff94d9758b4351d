"""Dense maps from fitted models: NIfTI volumes on MNI152 masks and atlas region averages."""

from .dense import (NAMED_MASKS, VoxelGrid, gene_label, has_uncertainty, map_filename,
                    model_genes, predict_dense, predict_prepared, prepare_points, resolve_mask,
                    stack_filename, voxel_grid, write_maps)
from .regional import parcellate_model

__all__ = [
    "NAMED_MASKS", "VoxelGrid", "gene_label", "has_uncertainty", "map_filename", "model_genes",
    "parcellate_model", "predict_dense", "predict_prepared", "prepare_points", "resolve_mask",
    "stack_filename", "voxel_grid", "write_maps",
]
