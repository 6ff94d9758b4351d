"""MNI152 space tools: grids, masks, tissue class, sample-to-parcel matching, parcellation."""

from .matching import match_to_parcels
from .parcellate import paint, parcellate
from .space import (check_mni_image, mask_coordinates, mni_grid, mni_to_voxel, resample_to_grid,
                    sample_image, voxel_to_mni)
from .tissue import tissue_class, tissue_class_at, tissue_class_image, with_tissue_class

__all__ = [
    "check_mni_image", "mask_coordinates", "match_to_parcels", "mni_grid", "mni_to_voxel",
    "paint", "parcellate", "resample_to_grid", "sample_image", "tissue_class",
    "tissue_class_at", "tissue_class_image", "voxel_to_mni", "with_tissue_class",
]
