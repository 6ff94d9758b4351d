"""Spectral embedding of genes: one ordinal "gene axis" from an expression matrix.

Section 3 of the seed paper: from an expression matrix (samples or regions x genes)

1. an affinity ``A`` between genes, from their correlation across rows (see
   :data:`AFFINITIES`; the diagonal is set to 0, i.e. no self-loops);
2. the degree matrix ``D_ii = sum_j A_ij``;
3. the normalised Laplacian ``L = I - D^-1/2 A D^-1/2`` (Ng, Jordan & Weiss, 2001);
4. its eigenvectors; ``e_g`` is the eigenvector of the smallest non-trivial eigenvalue
   (the second smallest, the smallest being 0 with eigenvector ``D^1/2 1``).

The sign of an eigenvector is arbitrary, so it is fixed deterministically: the entry of
largest magnitude is made positive (the first such entry on ties). ``e_g`` is then scaled
to [0, 1] by its minimum and maximum. (The paper says it "normalises e_g using its mean
and standard deviation to scale its values to [0, 1]"; min-max scaling is the reading
that yields [0, 1].)

Default affinity: ``"shifted"``, ``A_ij = (1 + r_ij) / 2``. It keeps the sign of the
correlation, so anti-correlated genes are far apart and the axis runs from one gene
programme to its opposite (the "disease axis" of the paper's Fig. 6). ``"absolute"``
(``|r|``) would place anti-correlated genes together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.sparse.linalg import eigsh

from ..datasets.validate import check_choice
from ..errors import InputError

logger = logging.getLogger(__name__)


def _shifted(r):
    return (1.0 + r) / 2.0


def _absolute(r):
    return np.abs(r)


def _positive(r):
    return np.clip(r, 0.0, None)


def _gaussian(r):
    # correlation distance d = 1 - r in [0, 2]; bandwidth 0.5 gives A = exp(-4 d^2)
    return np.exp(-((1.0 - r) / 0.5) ** 2)


#: affinity name -> function of the correlation matrix (values in [-1, 1]).
AFFINITIES = {
    "shifted": _shifted,     # (1 + r) / 2: keeps the sign; anti-correlated genes far apart
    "absolute": _absolute,   # |r|: anti-correlated genes close
    "positive": _positive,   # max(r, 0): only positive co-expression links genes
    "gaussian": _gaussian,   # exp(-((1 - r) / 0.5)^2): a heat kernel on correlation distance
}

#: correlation name -> transform of the columns applied before Pearson correlation.
CORRELATIONS = ("pearson", "spearman")

#: Nystrom placement needs 1 - eigenvalue at least this large; below it genes are placed by
#: the affinity-weighted mean position of their PLACE_NEIGHBOURS most similar genes.
NYSTROM_MIN_MU = 0.05
PLACE_NEIGHBOURS = 3

#: Above this many genes the spectrum is computed partially (``eigsh``) instead of fully.
DENSE_EIGEN_LIMIT = 2000


def _as_frame(values, name: str = "values") -> pd.DataFrame:
    if isinstance(values, pd.DataFrame):
        frame = values
    else:
        array = np.asarray(values, dtype=float)
        if array.ndim != 2:
            raise InputError(f"{name} must be a 2-D (rows x genes) table, got shape {array.shape}")
        frame = pd.DataFrame(array, columns=[f"gene{i}" for i in range(array.shape[1])])
    if frame.shape[0] < 3 or frame.shape[1] < 1:
        raise InputError(f"{name} needs at least 3 rows and 1 gene, got shape {frame.shape}")
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()].unique()
        raise InputError(f"{name} has duplicated genes: {', '.join(map(str, dup[:10]))}")
    try:
        frame = frame.astype(float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} has non-numeric values ({exc})") from None
    if np.isinf(frame.to_numpy()).any():
        raise InputError(f"{name} contain infinite values")
    return frame


def gene_correlation(values, method: str = "pearson") -> pd.DataFrame:
    """Correlation between the genes (columns) of an expression table across its rows.

    Parameters
    ----------
    values : (n_rows, n_genes) DataFrame or array
        Samples or regions x genes; NaN marks unmeasured values (pairwise-complete
        correlation is then used).
    method : {"pearson", "spearman"}

    Returns
    -------
    (n_genes, n_genes) DataFrame
    """
    check_choice(method, CORRELATIONS, "method")
    frame = _as_frame(values)
    if method == "spearman":
        frame = frame.rank()
    array = frame.to_numpy()
    if np.isnan(array).any():
        corr = frame.corr(min_periods=3).to_numpy(copy=True)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(array, rowvar=False).reshape(array.shape[1], array.shape[1])
    bad = ~np.isfinite(corr).all(axis=0)
    if bad.any():
        genes = frame.columns[bad]
        raise InputError(
            f"{int(bad.sum())} gene(s) have constant values or too few shared rows to correlate: "
            f"{', '.join(map(str, genes[:10]))}; drop them before embedding"
        )
    np.fill_diagonal(corr, 1.0)
    return pd.DataFrame(np.clip(corr, -1.0, 1.0), index=frame.columns, columns=frame.columns)


def gene_affinity(correlation, affinity: str = "shifted") -> np.ndarray:
    """Turn a gene correlation matrix into a non-negative affinity with a zero diagonal.

    Parameters
    ----------
    correlation : (n, n) array or DataFrame, values in [-1, 1]
    affinity : {"shifted", "absolute", "positive", "gaussian"}
        See :data:`AFFINITIES`.

    Returns
    -------
    (n, n) float array
    """
    check_choice(affinity, tuple(AFFINITIES), "affinity")
    matrix = AFFINITIES[affinity](np.asarray(correlation, dtype=float))
    matrix = (matrix + matrix.T) / 2.0
    np.fill_diagonal(matrix, 0.0)
    return matrix


def _check_degree(degree: np.ndarray) -> np.ndarray:
    if np.any(degree <= 0):
        isolated = np.flatnonzero(degree <= 0)[:10].tolist()
        raise InputError(f"genes at positions {isolated} have no affinity to any other gene; "
                         "use affinity='shifted' or drop them")
    return degree


def normalized_laplacian(affinity) -> tuple[np.ndarray, np.ndarray]:
    """Return ``L = I - D^-1/2 A D^-1/2`` and the degrees ``D_ii``.

    Raises
    ------
    InputError
        When a gene has zero degree (no affinity to any other gene).
    """
    affinity = np.asarray(affinity, dtype=float)
    degree = _check_degree(affinity.sum(axis=1))
    scale = 1.0 / np.sqrt(degree)
    laplacian = np.eye(len(degree)) - scale[:, None] * affinity * scale[None, :]
    return (laplacian + laplacian.T) / 2.0, degree


def _fix_sign(vector: np.ndarray) -> np.ndarray:
    index = int(np.argmax(np.abs(vector)))
    return -vector if vector[index] < 0 else vector


@dataclass
class GeneAxis:
    """A spectral gene axis.

    Attributes
    ----------
    positions : pandas.Series
        ``e_g`` in [0, 1] per gene (index = gene names, input order).
    eigenvector : pandas.Series
        The unscaled, sign-fixed eigenvector of the smallest non-trivial eigenvalue (unit norm).
    eigenvalues : (k,) array
        Eigenvalues of the normalised Laplacian, ascending (all of them for up to
        :data:`DENSE_EIGEN_LIMIT` genes, otherwise the smallest ``k``).
    eigenvectors : pandas.DataFrame
        (n_genes, m) eigenvectors of the smallest eigenvalues (column ``v0`` trivial),
        sign-fixed, for figures of the genes on the first eigenvectors.
    order : list of str
        Genes sorted by ascending ``e_g``.
    affinity, correlation_method : str
        Options used.
    scale : (float, float)
        Minimum and maximum of the eigenvector, used to scale ``e_g`` (and placed genes).
    degree : pandas.Series
        Degrees ``D_ii`` (used to place new genes).
    correlation : pandas.DataFrame or None
        The gene correlation matrix (kept for figures).
    reference : pandas.DataFrame or None
        The expression table the axis was computed from (rows x genes), needed to place
        genes that were not embedded.
    """

    positions: pd.Series
    eigenvector: pd.Series
    eigenvalues: np.ndarray
    eigenvectors: pd.DataFrame
    order: list
    affinity: str = "shifted"
    correlation_method: str = "pearson"
    scale: tuple = (0.0, 1.0)
    degree: pd.Series | None = None
    correlation: pd.DataFrame | None = field(default=None, repr=False)
    reference: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def genes(self) -> list:
        """Gene names in input order."""
        return [str(g) for g in self.positions.index]

    @property
    def eigenvalue(self) -> float:
        """The smallest non-trivial eigenvalue (the one ``e_g`` belongs to)."""
        return float(self.eigenvalues[1])

    def table(self) -> pd.DataFrame:
        """Genes sorted along the axis: ``rank``, ``position`` (e_g), ``eigenvector``."""
        frame = pd.DataFrame({"position": self.positions, "eigenvector": self.eigenvector})
        frame = frame.loc[self.order]
        frame.insert(0, "rank", np.arange(1, len(frame) + 1))
        frame.index.name = "gene"
        return frame

    def to_state(self) -> dict:
        """A JSON-compatible description (without the reference table and correlation)."""
        return {
            "genes": self.genes,
            "positions": self.positions.astype(float).tolist(),
            "eigenvector": self.eigenvector.astype(float).tolist(),
            "eigenvalues": np.asarray(self.eigenvalues, dtype=float).tolist(),
            "affinity": self.affinity,
            "correlation_method": self.correlation_method,
            "scale": [float(self.scale[0]), float(self.scale[1])],
            "degree": None if self.degree is None else self.degree.astype(float).tolist(),
        }

    @classmethod
    def from_state(cls, state: dict, reference: pd.DataFrame | None = None) -> "GeneAxis":
        """Rebuild an axis written by :meth:`to_state` (eigenvectors beyond ``e_g`` are not kept)."""
        genes = pd.Index(state["genes"], name="gene")
        positions = pd.Series(state["positions"], index=genes, name="position")
        vector = pd.Series(state["eigenvector"], index=genes, name="eigenvector")
        degree = None if state.get("degree") is None else pd.Series(state["degree"], index=genes)
        return cls(positions=positions, eigenvector=vector,
                   eigenvalues=np.asarray(state["eigenvalues"], dtype=float),
                   eigenvectors=vector.to_frame("v1"),
                   order=list(positions.sort_values(kind="stable").index),
                   affinity=state["affinity"], correlation_method=state["correlation_method"],
                   scale=tuple(state["scale"]), degree=degree, reference=reference)


def spectral_gene_axis(values, affinity: str = "shifted", method: str = "pearson",
                       n_eigenvalues: int = 30, keep_reference: bool = True) -> GeneAxis:
    """Compute the spectral gene axis of an expression table.

    Parameters
    ----------
    values : (n_rows, n_genes) DataFrame or array
        Expression of each gene at sample sites or regions (NaN allowed: pairwise-complete
        correlations).
    affinity : {"shifted", "absolute", "positive", "gaussian"}
        How correlations become affinities (:data:`AFFINITIES`; default ``(1 + r) / 2``).
    method : {"pearson", "spearman"}
        Correlation across rows.
    n_eigenvalues : int
        Number of eigenvalues computed when there are more than :data:`DENSE_EIGEN_LIMIT`
        genes (otherwise the full spectrum is returned).
    keep_reference : bool
        Keep ``values`` in the result, so that new genes can be placed later
        (:func:`place_genes`).

    Returns
    -------
    GeneAxis

    Examples
    --------
    >>> axis = spectral_gene_axis(regional_table[ad_genes])      # doctest: +SKIP
    >>> axis.positions["APOE"], axis.order[:3]                    # doctest: +SKIP
    """
    frame = _as_frame(values)
    n_genes = frame.shape[1]
    genes = pd.Index([str(c) for c in frame.columns], name="gene")
    if n_genes < 2:
        raise InputError(f"a gene axis needs at least 2 genes, got {n_genes}")
    correlation = gene_correlation(frame, method)
    matrix = gene_affinity(correlation.to_numpy(), affinity)
    n_vectors = min(n_genes, 10)
    if n_genes <= DENSE_EIGEN_LIMIT:
        laplacian, degree = normalized_laplacian(matrix)
        eigenvalues, vectors = linalg.eigh(laplacian)
        vectors = vectors[:, :n_vectors]
    else:
        # many genes: M = D^-1/2 A D^-1/2 in place (no dense Laplacian or identity); the
        # largest eigenvalues of M are the smallest of L = I - M
        degree = _check_degree(matrix.sum(axis=1))
        scale = 1.0 / np.sqrt(degree)
        matrix *= scale[:, None]
        matrix *= scale[None, :]
        k = min(max(n_eigenvalues, n_vectors), n_genes - 1)
        mu, vectors = eigsh(matrix, k=k, which="LA")
        order = np.argsort(-mu)
        eigenvalues, vectors = 1.0 - mu[order], vectors[:, order][:, :n_vectors]
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    vectors = np.column_stack([_fix_sign(vectors[:, i]) for i in range(vectors.shape[1])])
    if n_genes > 2 and eigenvalues[1] < 1e-8:
        logger.warning("the gene affinity graph is disconnected (eigenvalue 0 is repeated); "
                       "the gene axis then separates the components")
    vector = vectors[:, 1]
    low, high = float(vector.min()), float(vector.max())
    span = high - low
    positions = (vector - low) / span if span > 0 else np.full(n_genes, 0.5)
    positions = pd.Series(positions, index=genes, name="position")
    logger.info("gene axis over %d genes (affinity %s): eigenvalues %s", n_genes, affinity,
                np.round(eigenvalues[:4], 4).tolist())
    reference = None
    if keep_reference:
        reference = frame.copy()
        reference.columns = genes
    corr_frame = pd.DataFrame(correlation.to_numpy(), index=genes, columns=genes)
    return GeneAxis(
        positions=positions,
        eigenvector=pd.Series(vector, index=genes, name="eigenvector"),
        eigenvalues=eigenvalues,
        eigenvectors=pd.DataFrame(vectors, index=genes,
                                  columns=[f"v{i}" for i in range(vectors.shape[1])]),
        order=list(positions.sort_values(kind="stable").index),
        affinity=affinity, correlation_method=method, scale=(low, high),
        degree=pd.Series(degree, index=genes, name="degree"),
        correlation=corr_frame, reference=reference,
    )


def place_genes(axis: GeneAxis, values, reference=None) -> pd.Series:
    """Place genes that were not embedded onto an existing gene axis (Nystrom extension).

    A new gene ``x`` gets affinities ``a_xj`` to the embedded genes from its correlations
    with them (same affinity and correlation as the axis); the eigenvector equation
    ``D^-1/2 A D^-1/2 u = (1 - lambda) u`` is extended to it,

        u_x = sum_j a_xj / sqrt(d_x d_j) u_j / (1 - lambda),   d_x = sum_j a_xj,

    and ``u_x`` is scaled with the minimum and maximum of the embedded genes (so a placed
    gene can fall slightly outside [0, 1]). When ``1 - lambda < 0.05`` (no clear spectral
    structure, e.g. a handful of similar genes) the extension is ill-conditioned and a gene
    gets instead the affinity-weighted mean position of its 3 most similar embedded genes.

    Parameters
    ----------
    axis : GeneAxis
    values : (n_rows, n_new) DataFrame
        Expression of the new genes on the same rows (same index) as the table the axis
        was computed from.
    reference : DataFrame, optional
        That table, when ``axis`` does not keep it.

    Returns
    -------
    pandas.Series
        Positions on the axis, indexed by the new genes.
    """
    reference = axis.reference if reference is None else reference
    if reference is None:
        raise InputError("this gene axis keeps no reference table; pass reference= (the table "
                         "it was computed from) to place new genes")
    if axis.degree is None:
        raise InputError("this gene axis has no degrees stored; recompute it with spectral_gene_axis")
    frame = _as_frame(values, "new gene values")
    if isinstance(values, pd.DataFrame):
        if not frame.index.equals(reference.index):
            if set(frame.index) != set(reference.index):
                raise InputError("new gene values must have the same rows (index) as the table the "
                                 f"gene axis was computed from ({len(reference)} rows)")
            frame = frame.loc[reference.index]
    elif len(frame) != len(reference):
        raise InputError(f"new gene values have {len(frame)} rows, the gene axis reference "
                         f"has {len(reference)}")
    ref = reference[axis.genes]
    combined = pd.concat([ref.reset_index(drop=True), frame.reset_index(drop=True)
                          .add_prefix("__new__")], axis=1)
    corr = gene_correlation(combined, axis.correlation_method).to_numpy()
    n = ref.shape[1]
    cross = corr[n:, :n]                                                   # (n_new, n_ref)
    affinity = AFFINITIES[axis.affinity](cross)
    degree_new = affinity.sum(axis=1)
    if np.any(degree_new <= 0):
        raise InputError("a new gene has no affinity to any embedded gene; it cannot be placed")
    mu = 1.0 - axis.eigenvalue
    if mu >= NYSTROM_MIN_MU:
        degree = axis.degree.loc[axis.genes].to_numpy()
        vector = axis.eigenvector.loc[axis.genes].to_numpy()
        u_new = (affinity / np.sqrt(degree_new)[:, None] / np.sqrt(degree)[None, :]) @ vector / mu
        low, high = axis.scale
        span = high - low
        positions = (u_new - low) / span if span > 0 else np.full(len(u_new), 0.5)
    else:
        # no clear spectral structure (few or uniformly similar genes): the extension is
        # ill-conditioned, so use the affinity-weighted mean position of the closest genes
        logger.info("gene-axis eigenvalue %.3f >= %.2f: placing genes by their %d most similar "
                    "genes", axis.eigenvalue, 1 - NYSTROM_MIN_MU, PLACE_NEIGHBOURS)
        k = min(PLACE_NEIGHBOURS, n)
        nearest = np.argsort(-affinity, axis=1)[:, :k]
        weights = np.take_along_axis(affinity, nearest, axis=1)
        known = axis.positions.loc[axis.genes].to_numpy()[nearest]
        positions = (weights * known).sum(1) / weights.sum(1)
    outside = (positions < -0.05) | (positions > 1.05)
    if outside.any():
        logger.warning("%d placed gene(s) fall outside the axis range [0, 1]", int(outside.sum()))
    return pd.Series(positions, index=pd.Index([str(c) for c in frame.columns], name="gene"),
                     name="position")
