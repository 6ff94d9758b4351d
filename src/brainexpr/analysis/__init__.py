"""Analyses of regional gene maps: spatial nulls and disease association.

- :mod:`brainexpr.analysis.nulls`: surrogate maps that keep spatial autocorrelation
  (variogram matching of Burt et al. 2020, Moran spectral randomisation).
- :mod:`brainexpr.analysis.association`: gene-target correlations with spatial-null
  p-values and FDR, agreement between two sources of gene maps, gene-axis gradient test,
  Open Targets comparison.
"""

from .association import (REGION_SETS, AxisGradient, SourceAgreement, align_regions,
                          axis_gradient, centroid_distances, compare_sources,
                          correlate_with_target, open_targets_association, parcel_centroids,
                          select_regions, to_region_keys)
from .nulls import (NULL_METHODS, check_distances, generate_surrogates, moran_eigenvectors,
                    moran_surrogates, morans_i, permutation_surrogates, spatial_weights,
                    variogram, variogram_surrogates)

__all__ = [
    "REGION_SETS", "AxisGradient", "SourceAgreement", "align_regions", "axis_gradient",
    "centroid_distances", "compare_sources", "correlate_with_target",
    "open_targets_association", "parcel_centroids", "select_regions", "to_region_keys",
    "NULL_METHODS", "check_distances", "generate_surrogates", "moran_eigenvectors",
    "moran_surrogates", "morans_i", "permutation_surrogates", "spatial_weights", "variogram",
    "variogram_surrogates",
]
