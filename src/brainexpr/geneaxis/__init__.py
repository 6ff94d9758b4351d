"""The gene axis: a spectral embedding that orders genes by their co-expression.

``spectral_gene_axis`` computes ``e_g`` in [0, 1] (seed paper, section 3);
``place_genes`` puts genes that were not embedded onto an existing axis;
``profile_pca_embedding`` gives every gene ``k`` numbers instead of one (the leading
principal components of its profile, :mod:`brainexpr.geneaxis.profile`); the figures of
the paper's Fig. 2 / Fig. S1 kind are in :mod:`brainexpr.geneaxis.figures`.
"""

from .embedding import (AFFINITIES, CORRELATIONS, GeneAxis, gene_affinity, gene_correlation,
                        normalized_laplacian, place_genes, spectral_gene_axis)
from .profile import profile_pca_embedding

__all__ = [
    "AFFINITIES", "CORRELATIONS", "GeneAxis", "gene_affinity", "gene_correlation",
    "normalized_laplacian", "place_genes", "profile_pca_embedding", "spectral_gene_axis",
]
