"""A richer gene embedding: the leading principal components of each gene's profile.

The spectral gene axis (:mod:`brainexpr.geneaxis.embedding`) gives every gene one number,
which cannot keep thousands of genes apart. :func:`profile_pca_embedding` gives every gene
``k`` numbers instead: the correlations of its profile across the rows of an expression
table (regions or samples) with the ``k`` leading principal components of all genes'
standardised profiles. Genes with similar profiles get similar embeddings, and a gene's
profile is summarised by the components that most genes share, so a gene network fed
these numbers (the factorized INR's, ``gene_embedding="profile-pca"``) can tell the
genes apart along ``k`` directions instead of one.

The embedding is a pure function of the table it is given: inside a leave-parcels-out
fold it is computed from the training rows only.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def profile_pca_embedding(values, n_components: int) -> np.ndarray:
    """Embed genes by the principal components of their standardised profiles.

    Each gene's column is standardised across the rows (mean 0, SD 1; missing values are
    set to the gene's mean, i.e. 0 after standardising; a constant gene is all 0). With
    ``Z = U S V^T`` the SVD of the standardised (rows x genes) matrix, gene ``g``'s
    embedding is ``Z[:, g]^T U[:, :k] / sqrt(n_rows)``: the Pearson correlation of its
    profile with each of the ``k`` leading component scores, in [-1, 1]. The sign of
    each component is fixed so that its entry of largest magnitude over the genes is
    positive. When the table has fewer than ``k`` non-trivial components (rank below
    ``k``), the missing columns are 0.

    Parameters
    ----------
    values : (n_rows, n_genes) array or DataFrame
        Expression (NaN = missing); rows are regions or samples, columns genes.
    n_components : int
        ``k``, the length of every gene's embedding (>= 1).

    Returns
    -------
    (n_genes, n_components) float array
        Correlations with the leading components, strongest component first.
    """
    array = np.asarray(values, dtype=float)
    if array.ndim != 2 or array.shape[0] < 2 or array.shape[1] < 1:
        raise InputError(f"values must be a (rows x genes) table with at least 2 rows and 1 "
                         f"gene, got shape {array.shape}")
    if np.isinf(array).any():
        raise InputError("values contain infinite values")
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) \
            or n_components < 1:
        raise InputError(f"n_components must be an integer >= 1, got {n_components!r}")
    z = _standardised(array)
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    rank = int((s > s.max(initial=0.0) * 1e-10).sum()) if s.size else 0
    k = min(int(n_components), rank)
    embedding = np.zeros((array.shape[1], int(n_components)))
    embedding[:, :k] = z.T @ u[:, :k] / np.sqrt(len(z))
    largest = np.argmax(np.abs(embedding[:, :k]), axis=0)
    signs = np.sign(embedding[largest, np.arange(k)])
    embedding[:, :k] *= np.where(signs == 0, 1.0, signs)
    return embedding


def _standardised(array: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to SD 1 (population SD), NaN and constant columns -> 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(np.where(np.isnan(array).all(axis=0), 0.0, array), axis=0)
        centred = np.nan_to_num(array - mean, nan=0.0)
        sd = np.sqrt((centred ** 2).mean(axis=0))
    return np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 1e-12 * (1 + np.abs(mean)))
