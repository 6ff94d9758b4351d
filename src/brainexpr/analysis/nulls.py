"""Surrogate brain maps that keep the spatial autocorrelation of a regional map.

Two neighbouring brain regions have similar values in almost every brain map (gene
expression, tau-PET, atrophy), so the correlation between two unrelated maps is far more
often "significant" than a parametric p-value assumes. A spatial null compares the
observed correlation with correlations against *surrogate* maps that share the spatial
autocorrelation of the original map but are otherwise random.

Methods (``generate_surrogates(..., method=...)``):

``variogram``
    Variogram-matched surrogates (Burt et al. 2020, NeuroImage 220:117038; the algorithm of
    the ``brainsmash`` package): randomly permute the values, smooth the permuted map with a
    distance kernel over its ``delta`` nearest neighbours, rescale it and add white noise so
    that its smoothed variogram matches the target's, keeping the best of several ``delta``.
``moran``
    Moran spectral randomisation (Wagner & Dray 2015, Methods Ecol. Evol. 6:1169; as in
    BrainSpace): expand the map on the Moran eigenvector maps of an inverse-distance weight
    matrix and randomise the coefficients (sign flips, or random rotations within pairs of
    eigenvectors), which keeps the variance and, for sign flips, Moran's I exactly.
``spin``
    Spin test (Alexander-Bloch et al. 2018, NeuroImage 178:540; as neuromaps'
    ``alexander_bloch``/``vazquez_rodriguez`` nulls): random rotations of the fsaverage5
    sphere, the left hemisphere's rotation mirrored (x reflected) for the right; each
    region takes the value of the region whose rotated centroid it is matched with, by the
    Hungarian assignment (a permutation; Vazquez-Rodriguez et al. 2019, PNAS 116:21219) or
    by the nearest rotated centroid (Alexander-Bloch's original, values may repeat).
    Cortical regions only: a subcortical region cannot be rotated, and asking for one is
    an error that names it and the fix (a cortical region set, or another method).
``permutation``
    Plain random permutation of the values (destroys spatial autocorrelation; the naive
    baseline, for comparison only).

Everything is vectorised over surrogates and seeded through ``random_state``.
"""

from __future__ import annotations

import logging

import numpy as np

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from ..utils import check_random_state

logger = logging.getLogger(__name__)

__all__ = [
    "KERNELS", "NULL_INPUTS", "NULL_METHODS", "SPIN_ASSIGNMENTS", "check_distances", "generate_surrogates", "morans_i",
    "moran_eigenvectors", "moran_surrogates", "permutation_surrogates", "random_rotations",
    "spatial_weights", "spin_surrogates",
    "variogram", "variogram_surrogates",
]

#: Smoothing kernels of the variogram method (``d``: distances to the k nearest
#: neighbours, one row per region); the same definitions as brainsmash.
KERNELS = {
    "exp": lambda d: np.exp(-d / d.max(axis=-1, keepdims=True)),
    "gaussian": lambda d: np.exp(-1.25 * np.square(d / d.max(axis=-1, keepdims=True))),
    "invdist": lambda d: 1.0 / d,
    "uniform": lambda d: np.ones_like(d) / d.shape[-1],
}


# --------------------------------------------------------------------------- checks
def _check_values(values) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise InputError(f"values must be a 1-D regional map, got an array of shape {x.shape}")
    if x.size < 4:
        raise InputError(f"values has {x.size} regions; surrogate maps need at least 4")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise InputError(
            f"values has {bad.size} missing or infinite entries (positions "
            f"{', '.join(map(str, bad[:10]))}); drop those regions from the map and the distances"
        )
    if np.ptp(x) == 0:
        raise InputError("values is constant; a constant map has no spatial null")
    return x


def check_distances(distances, n_regions: int | None = None) -> np.ndarray:
    """Validate an inter-region distance matrix.

    Parameters
    ----------
    distances : (n, n) array-like, mm
        Symmetric, non-negative, zero on the diagonal, strictly positive elsewhere
        (Euclidean or geodesic distances between region centroids).
    n_regions : int, optional
        Expected number of regions.

    Returns
    -------
    (n, n) ndarray of float

    Raises
    ------
    InputError
        When the matrix is not square, has the wrong size, NaNs, negative or zero
        off-diagonal entries, or is not symmetric.
    """
    d = np.asarray(distances, dtype=float)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise InputError(f"distances must be a square (n, n) matrix, got shape {d.shape}")
    if n_regions is not None and d.shape[0] != n_regions:
        raise InputError(
            f"distances is {d.shape[0]} x {d.shape[1]} but the map has {n_regions} regions; "
            "give one row and column per region, in the order of the map"
        )
    if not np.isfinite(d).all():
        raise InputError("distances has missing or infinite entries")
    off = ~np.eye(d.shape[0], dtype=bool)
    if (d[off] <= 0).any():
        rows, cols = np.nonzero((d <= 0) & off)
        raise InputError(
            f"distances has {rows.size} zero or negative off-diagonal entries (e.g. row "
            f"{rows[0]}, column {cols[0]}); two regions share a position or a region is duplicated"
        )
    if not np.allclose(d, d.T, rtol=1e-6, atol=1e-6 * max(float(d.max()), 1.0)):
        raise InputError("distances is not symmetric")
    if np.abs(np.diag(d)).max() > 1e-9 * max(float(d.max()), 1.0):
        raise InputError("distances must be zero on the diagonal")
    return d


# --------------------------------------------------------------------------- variogram
def _pair_indices(d: np.ndarray, pv: float):
    """Upper-triangle pairs closer than the ``pv``-th percentile of all distances."""
    i, j = np.triu_indices(d.shape[0], k=1)
    u = d[i, j]
    keep = u < np.percentile(u, pv)
    if keep.sum() < 3:
        keep = u <= np.percentile(u, pv)
    return i[keep], j[keep], u[keep]


def _variogram_kernel(u: np.ndarray, nh: int, bandwidth: float | None):
    """(nh, n_pairs) row-normalised Gaussian weights that smooth a variogram."""
    h = np.linspace(u.min(), u.max(), nh)
    b = 3.0 * (h[1] - h[0]) if bandwidth is None else float(bandwidth)
    if not b > 0:
        raise InputError(f"bandwidth must be positive, got {b}")
    w = np.exp(-np.square(2.68 * np.abs(u[None, :] - h[:, None]) / b) / 2.0)
    return h, w / w.sum(axis=1, keepdims=True)


def variogram(values, distances, pv: float = 25, nh: int = 25, bandwidth: float | None = None):
    """Smoothed empirical variogram of one or many regional maps.

    Parameters
    ----------
    values : (n,) or (m, n) array
        Regional map(s).
    distances : (n, n) array, mm
    pv : float
        Only region pairs closer than this percentile of all pairwise distances are used.
    nh : int
        Number of distances at which the variogram is evaluated.
    bandwidth : float, optional, mm
        Width of the Gaussian smoothing kernel; default three times the spacing of ``h``.

    Returns
    -------
    h : (nh,) array, mm
        Distances.
    gamma : (nh,) or (m, nh) array
        Smoothed semivariance ``0.5 * (x_i - x_j)**2`` at each distance.
    """
    x = np.asarray(values, dtype=float)
    d = check_distances(distances, x.shape[-1])
    i, j, u = _pair_indices(d, pv)
    h, kernel = _variogram_kernel(u, nh, bandwidth)
    semivariance = 0.5 * np.square(x[..., i] - x[..., j])
    return h, semivariance @ kernel.T


def _smoothing_matrix(d: np.ndarray, k: int, kernel) -> np.ndarray:
    """(n, n) row-stochastic matrix averaging each region over its k nearest neighbours."""
    n = d.shape[0]
    order = np.argsort(d, axis=1, kind="stable")
    neighbours = order[:, 1:k + 1]  # nearest neighbours, excluding the region itself
    weights = kernel(np.take_along_axis(d, neighbours, axis=1))
    weights = weights / weights.sum(axis=1, keepdims=True)
    smoother = np.zeros((n, n))
    np.put_along_axis(smoother, neighbours, weights, axis=1)
    return smoother


def variogram_surrogates(values, distances, n_surrogates: int = 1000, *,
                         deltas=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                         kernel: str = "exp", pv: float = 25, nh: int = 25,
                         bandwidth: float | None = None, resample: bool = False,
                         random_state=None) -> np.ndarray:
    """Variogram-matched surrogate maps (Burt et al. 2020).

    For every surrogate the values are randomly permuted; for each ``delta`` the permuted
    map is smoothed over the ``int(delta * n)`` nearest regions with ``kernel``; the
    smoothed variogram of the result is regressed on the target's (``target ~ alpha +
    beta * smoothed``); the ``delta`` with the smallest residual is kept and the surrogate
    is ``sqrt(|beta|) * smoothed + sqrt(|alpha|) * white noise``.

    Parameters
    ----------
    values : (n,) array
        Regional map (no NaNs).
    distances : (n, n) array, mm
        Inter-region distances in the order of ``values``.
    n_surrogates : int
    deltas : sequence of float in (0, 1]
        Fractions of regions used as neighbourhoods for smoothing.
    kernel : {"exp", "gaussian", "invdist", "uniform"}
        Distance weights of the smoothing (see :data:`KERNELS`).
    pv : float
        Percentile of pairwise distances up to which variograms are matched.
    nh : int
        Number of variogram distances.
    bandwidth : float, optional, mm
        Variogram smoothing width (default: three variogram steps).
    resample : bool
        False (default, as brainsmash): surrogates are shifted to the target's mean.
        True: each surrogate takes exactly the target's values, assigned by rank (keeps the
        value distribution at some cost to the variogram fit).
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    (n_surrogates, n) ndarray
    """
    x = _check_values(values)
    n = x.size
    d = check_distances(distances, n)
    check_choice(kernel, KERNELS, "kernel")
    deltas = np.asarray(deltas, dtype=float).ravel()
    if deltas.size == 0 or (deltas <= 0).any() or (deltas > 1).any():
        raise InputError(f"deltas must be fractions in (0, 1], got {deltas.tolist()}")
    ks = np.clip((deltas * n).astype(int), 1, n - 1)
    rng = check_random_state(random_state)
    n_surrogates = _check_count(n_surrogates)

    i, j, u = _pair_indices(d, pv)
    _, vkernel = _variogram_kernel(u, nh, bandwidth)
    target = (0.5 * np.square(x[i] - x[j])) @ vkernel.T                       # (nh,)
    smoothers = np.stack([_smoothing_matrix(d, k, KERNELS[kernel]) for k in ks])  # (D, n, n)
    target_centred = target - target.mean()

    # Surrogates are computed in chunks that keep the (delta, surrogate, pair) arrays small.
    chunk_size = max(1, int(_CHUNK_FLOATS // (len(ks) * max(i.size, n))))
    out = np.empty((n_surrogates, n))
    for start in range(0, n_surrogates, chunk_size):
        m = min(chunk_size, n_surrogates - start)
        permuted = x[np.argsort(rng.random((m, n)), axis=1)]                    # (m, n)
        smoothed = np.einsum("dij,mj->dmi", smoothers, permuted)               # (D, m, n)
        vgram = (0.5 * np.square(smoothed[..., i] - smoothed[..., j])) @ vkernel.T  # (D, m, nh)
        # least squares target ~ alpha + beta * vgram, for every (delta, surrogate)
        centred = vgram - vgram.mean(axis=-1, keepdims=True)
        ss = np.square(centred).sum(axis=-1)
        beta = np.divide((centred * target_centred).sum(axis=-1), ss,
                         out=np.zeros_like(ss), where=ss > 0)
        alpha = target.mean() - beta * vgram.mean(axis=-1)
        residual = np.square(target - alpha[..., None] - beta[..., None] * vgram).sum(axis=-1)
        best = np.argmin(residual, axis=0)                                       # (m,)
        rows = np.arange(m)
        noise = rng.standard_normal((m, n))
        surrogates = (np.sqrt(np.abs(beta[best, rows]))[:, None] * smoothed[best, rows]
                      + np.sqrt(np.abs(alpha[best, rows]))[:, None] * noise)
        out[start:start + m] = surrogates
    if resample:
        return _rank_match(out, x)
    return out - out.mean(axis=1, keepdims=True) + x.mean()


#: Largest number of floats in one intermediate array of :func:`variogram_surrogates`.
_CHUNK_FLOATS = 4_000_000


def _rank_match(surrogates: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Give each surrogate the sorted target values in the order of its own ranks."""
    ranks = np.argsort(np.argsort(surrogates, axis=1, kind="stable"), axis=1)
    return np.sort(values)[ranks]


# --------------------------------------------------------------------------- Moran
#: Weight functions of :func:`spatial_weights`.
WEIGHTS = {
    "inverse": lambda d: 1.0 / d,
    "inverse_squared": lambda d: 1.0 / np.square(d),
}


def spatial_weights(distances, kind: str = "inverse") -> np.ndarray:
    """Spatial weight matrix from inter-region distances.

    Parameters
    ----------
    distances : (n, n) array, mm
    kind : {"inverse", "inverse_squared"}

    Returns
    -------
    (n, n) ndarray
        Symmetric, zero diagonal.
    """
    d = check_distances(distances)
    check_choice(kind, WEIGHTS, "weights")
    w = np.zeros_like(d)
    off = ~np.eye(d.shape[0], dtype=bool)
    w[off] = WEIGHTS[kind](d[off])
    return 0.5 * (w + w.T)


def morans_i(values, weights) -> np.ndarray:
    """Moran's I of one or many maps under a spatial weight matrix.

    Parameters
    ----------
    values : (n,) or (m, n) array
    weights : (n, n) array
        Spatial weights (e.g. :func:`spatial_weights`).

    Returns
    -------
    float or (m,) array
    """
    x = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    z = x - x.mean(axis=-1, keepdims=True)
    n = x.shape[-1]
    numerator = np.einsum("...i,ij,...j->...", z, w, z)
    return n / w.sum() * numerator / np.square(z).sum(axis=-1)


def moran_eigenvectors(distances, weights: str = "inverse"):
    """Moran eigenvector maps: the eigenvectors of the doubly-centred weight matrix.

    Parameters
    ----------
    distances : (n, n) array, mm
    weights : {"inverse", "inverse_squared"}

    Returns
    -------
    eigenvalues : (n - 1,) array
        In decreasing order (large positive = smooth, positively autocorrelated patterns).
    eigenvectors : (n, n - 1) array
        Orthonormal columns, all orthogonal to the constant map (so any centred map is an
        exact combination of them).
    """
    w = spatial_weights(distances, weights)
    n = w.shape[0]
    # Orthonormal basis of the maps with zero mean (complement of the constant vector).
    basis, _ = np.linalg.qr(np.eye(n) - 1.0 / n)
    basis = basis[:, : n - 1]
    eigenvalues, rotation = np.linalg.eigh(basis.T @ w @ basis)
    order = np.argsort(eigenvalues)[::-1]
    return eigenvalues[order], basis @ rotation[:, order]


def moran_surrogates(values, distances, n_surrogates: int = 1000, *, procedure: str = "singleton",
                     weights: str = "inverse", random_state=None) -> np.ndarray:
    """Moran spectral randomisation (Wagner & Dray 2015).

    The centred map is written exactly as ``z = V c`` on the Moran eigenvector maps ``V``
    (:func:`moran_eigenvectors`). ``singleton`` surrogates flip the sign of every
    coefficient at random; they keep the mean, the variance and Moran's I of the map
    exactly. ``pair`` surrogates rotate each pair of neighbouring eigenvectors (in
    eigenvalue order) by a random angle; they keep the mean and variance, and Moran's I
    approximately.

    Parameters
    ----------
    values : (n,) array
    distances : (n, n) array, mm
    n_surrogates : int
    procedure : {"singleton", "pair"}
    weights : {"inverse", "inverse_squared"}
        Spatial weights built from ``distances``.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    (n_surrogates, n) ndarray
    """
    x = _check_values(values)
    check_distances(distances, x.size)
    if procedure not in ("singleton", "pair"):
        raise InputError(f"procedure must be 'singleton' or 'pair', got {procedure!r}")
    rng = check_random_state(random_state)
    n_surrogates = _check_count(n_surrogates)
    _, vectors = moran_eigenvectors(distances, weights)
    coefficients = vectors.T @ (x - x.mean())                                   # (n - 1,)
    n_vec = coefficients.size
    if procedure == "singleton":
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n_surrogates, n_vec))
        randomised = signs * coefficients
    else:
        n_pairs = n_vec // 2
        angle = rng.uniform(0.0, 2.0 * np.pi, size=(n_surrogates, n_pairs))
        a, b = coefficients[0:2 * n_pairs:2], coefficients[1:2 * n_pairs:2]
        randomised = np.empty((n_surrogates, n_vec))
        randomised[:, 0:2 * n_pairs:2] = np.cos(angle) * a - np.sin(angle) * b
        randomised[:, 1:2 * n_pairs:2] = np.sin(angle) * a + np.cos(angle) * b
        if n_vec % 2:
            flips = rng.choice(np.array([-1.0, 1.0]), size=n_surrogates)
            randomised[:, -1] = flips * coefficients[-1]
    return randomised @ vectors.T + x.mean()


# --------------------------------------------------------------------------- permutation
def permutation_surrogates(values, distances=None, n_surrogates: int = 1000, *,
                           random_state=None) -> np.ndarray:
    """Random permutations of the map (no spatial autocorrelation; the naive baseline).

    ``distances`` is accepted for a uniform signature and ignored.

    Returns
    -------
    (n_surrogates, n) ndarray
    """
    x = _check_values(values)
    if distances is not None:
        check_distances(distances, x.size)
    rng = check_random_state(random_state)
    n_surrogates = _check_count(n_surrogates)
    return x[np.argsort(rng.random((n_surrogates, x.size)), axis=1)]


# --------------------------------------------------------------------------- spin
#: Spin-test assignment of regions to rotated regions (name -> description).
SPIN_ASSIGNMENTS = {
    "hungarian": "optimal one-to-one matching of regions and rotated centroids (Vazquez-"
                 "Rodriguez et al. 2019): every surrogate is a permutation of the values",
    "nearest": "each region takes the value of the nearest rotated centroid (Alexander-"
               "Bloch et al. 2018): values may repeat or be left out",
}

#: Reflection of the x axis that mirrors a left-hemisphere rotation onto the right.
_REFLECT_X = np.diag([-1.0, 1.0, 1.0])


def random_rotations(n_rotations: int, random_state=None) -> np.ndarray:
    """Uniformly distributed 3-D rotation matrices (QR of Gaussian matrices).

    Returns
    -------
    (n_rotations, 3, 3) array, proper rotations (determinant +1)
    """
    rng = check_random_state(random_state)
    q, r = np.linalg.qr(rng.standard_normal((int(n_rotations), 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]   # unique (Haar) Q
    flip = np.linalg.det(q) < 0
    q[flip, :, 0] *= -1.0
    return q


def _assign(cost: np.ndarray, assignment: str) -> np.ndarray:
    """Index of the rotated region matched with every region, from a (n, n) cost matrix."""
    if assignment == "nearest":
        return np.argmin(cost, axis=1)
    from scipy.optimize import linear_sum_assignment

    rows, columns = linear_sum_assignment(cost)
    out = np.empty(cost.shape[0], dtype=np.int64)
    out[rows] = columns
    return out


@fill_doc
def spin_surrogates(values, distances=None, n_surrogates: int = 1000, *, regions=None,
                    centroids=None, hemispheres=None, assignment: str = "hungarian",
                    data_dir=None, random_state=None) -> np.ndarray:
    """Spin-test surrogates of a cortical regional map (Alexander-Bloch et al. 2018).

    Parameters
    ----------
    values : (n,) array
        Regional map (no NaNs).
    distances : ignored
        Accepted for the uniform signature of :data:`NULL_METHODS`.
    n_surrogates : int
    regions : sequence of str, optional
        Cortical Desikan-Killiany keys of ``values`` (``"L_bankssts"``...); their centroids
        on the fsaverage5 sphere are computed (:func:`brainexpr.atlas.surface.
        sphere_centroids`). Give either ``regions`` or ``centroids`` and ``hemispheres``.
    centroids : (n, 3) array, optional
        Region centroids on a sphere centred at the origin (any parcellation).
    hemispheres : (n,) sequence of {"L", "R"}, optional
        Hemisphere of each centroid.
    assignment : {"hungarian", "nearest"}
        See :data:`SPIN_ASSIGNMENTS`.
    %(data_dir)s
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    (n_surrogates, n) ndarray

    Raises
    ------
    InputError
        A subcortical region, missing geometry, or an unknown assignment.
    """
    x = _check_values(values)
    n_surrogates = _check_count(n_surrogates)
    check_choice(assignment, SPIN_ASSIGNMENTS, "assignment")
    if centroids is None:
        if regions is None:
            raise InputError("spin nulls need the regions of the map (regions=) or their "
                             "sphere centroids (centroids=, hemispheres=)")
        from ..atlas.surface import sphere_centroids

        table = sphere_centroids(regions, data_dir=data_dir)
        centroids, hemispheres = table[["x", "y", "z"]].to_numpy(float), table["hemisphere"]
    centroids = np.asarray(centroids, dtype=float)
    hemispheres = np.asarray(hemispheres if hemispheres is not None else ["L"] * len(x))
    if centroids.shape != (x.size, 3) or hemispheres.shape != (x.size,):
        raise InputError(f"centroids must be ({x.size}, 3) and hemispheres ({x.size},), got "
                         f"{centroids.shape} and {hemispheres.shape}")
    if not set(hemispheres) <= {"L", "R"}:
        raise InputError("hemispheres must be 'L' or 'R' for every region")
    centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    rotations = random_rotations(n_surrogates, random_state)
    out = np.empty((n_surrogates, x.size))
    groups = [(np.flatnonzero(hemispheres == h), h) for h in ("L", "R")]
    for k, rotation in enumerate(rotations):
        for index, hemi in groups:
            if index.size == 0:
                continue
            spin = rotation if hemi == "L" else _REFLECT_X @ rotation @ _REFLECT_X
            rotated = centroids[index] @ spin.T
            # cost: angular distance proxy (1 - cosine) between original and rotated centroids
            cost = 1.0 - centroids[index] @ rotated.T
            out[k, index] = x[index][_assign(cost, assignment)]
    return out


def _check_count(n_surrogates) -> int:
    try:
        count = int(n_surrogates)
    except (TypeError, ValueError):
        raise InputError(f"n_surrogates must be a positive integer, got {n_surrogates!r}") from None
    if count < 1 or count != n_surrogates:
        raise InputError(f"n_surrogates must be a positive integer, got {n_surrogates!r}")
    return count


#: method name -> surrogate generator ``f(values, distances, n_surrogates, *, random_state, ...)``.
NULL_METHODS = {
    "variogram": variogram_surrogates,
    "moran": moran_surrogates,
    "spin": spin_surrogates,
    "permutation": permutation_surrogates,
}

#: method name -> the inputs it needs beyond the values: ``distances`` (an inter-region
#: distance matrix) or ``regions`` (the cortical region keys, for the sphere geometry).
NULL_INPUTS = {
    "variogram": ("distances",),
    "moran": ("distances",),
    "spin": ("regions",),
    "permutation": (),
}


def generate_surrogates(values, distances, n_surrogates: int = 1000, method: str = "variogram",
                        random_state=None, **options) -> np.ndarray:
    """Surrogate maps that preserve the spatial autocorrelation of a regional map.

    Parameters
    ----------
    values : (n_regions,) array
        Regional map (e.g. AD tau SUVR per Desikan-Killiany region); no NaNs.
    distances : (n_regions, n_regions) array, mm
        Inter-region distances (Euclidean between parcel centroids, or geodesic) in the
        order of ``values``.
    n_surrogates : int
    method : {"variogram", "moran", "spin", "permutation"}
        ``variogram``: Burt et al. 2020 (:func:`variogram_surrogates`); ``moran``: Moran
        spectral randomisation (:func:`moran_surrogates`); ``spin``: rotations of the
        fsaverage5 sphere (:func:`spin_surrogates`, needs ``regions=``); ``permutation``:
        random shuffles, which ignore space (naive baseline). :data:`NULL_INPUTS` says
        what each needs.
    random_state : None, int or numpy.random.Generator
        Seed; the same seed gives the same surrogates.
    **options
        Passed to the method's function (e.g. ``resample=True``, ``procedure="pair"``,
        ``regions=[...]`` for ``spin``).

    Returns
    -------
    (n_surrogates, n_regions) ndarray

    Examples
    --------
    >>> surrogates = generate_surrogates(tau, distances, 1000, random_state=0)
    >>> null_r = corr(gene, surrogates)           # doctest: +SKIP
    """
    check_choice(method, NULL_METHODS, "method")
    logger.debug("generating %d %s surrogates for %d regions", n_surrogates, method,
                 np.size(values))
    return NULL_METHODS[method](values, distances, n_surrogates, random_state=random_state,
                                **options)
