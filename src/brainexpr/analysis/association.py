"""Association of regional gene maps with a regional disease map (tau, amyloid, atrophy...).

Pure functions, in the order of an analysis:

1. :func:`to_region_keys` / :func:`select_regions` / :func:`align_regions`: match a regional
   gene table and a target map by region through the harmonisation table of
   :mod:`brainexpr.datasets.regions`, restricted to a region set (default: cortex, both
   hemispheres, because AV1451 tau binds off-target in pallidum and putamen).
2. :func:`parcel_centroids`, :func:`centroid_distances`: inter-region distances for nulls.
3. :func:`correlate_with_target`: per gene Pearson and Spearman correlation with the target,
   parametric p-values, spatial-null p-values from surrogate target maps
   (:func:`brainexpr.analysis.nulls.generate_surrogates`) and Benjamini-Hochberg FDR across
   genes.
4. :func:`compare_sources`: agreement between two sources of gene maps (their gene-target
   correlations) and the most discordant genes.
5. :func:`axis_gradient`: does the gene-target correlation change along the gene axis?
   With a gene-label permutation p-value and a spatial-null p-value.
6. :func:`open_targets_association`: gene-target correlation versus Open Targets score.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..datasets.regions import region_table, resolve_names, to_keys
from ..datasets.validate import check_choice
from ..errors import InputError
from ..utils import check_random_state
from .nulls import NULL_INPUTS, check_distances, generate_surrogates

logger = logging.getLogger(__name__)

__all__ = [
    "CORRELATION_METHODS", "HEMISPHERES", "REGION_SETS", "AxisGradient", "SourceAgreement",
    "align_regions", "axis_gradient", "centroid_distances", "compare_sources",
    "correlate_with_target", "open_targets_association", "parcel_centroids",
    "restrict_to_covered_hemisphere", "select_regions", "to_region_keys",
]

#: Region set name -> the structures (column ``structure`` of the region table) it holds.
REGION_SETS = {
    "cortex": ("cortex",),
    "subcortex": ("subcortex",),
    "cortex+subcortex": ("cortex", "subcortex"),
    "all": ("cortex", "subcortex", "cerebellum", "brainstem"),
}

#: Hemisphere option -> hemisphere codes of the region table (B = midline, brainstem).
HEMISPHERES = {"both": ("L", "R", "B"), "left": ("L",), "right": ("R",)}

#: Correlation name -> function of (x ranks-or-values) used for gene-target correlations.
CORRELATION_METHODS = ("pearson", "spearman")


# --------------------------------------------------------------------------- regions
def to_region_keys(data, what: str = "table", hemisphere: str | None = None):
    """Return ``data`` re-indexed by canonical region keys (``"L_bankssts"``...).

    Parameters
    ----------
    data : pandas.Series or DataFrame
        Indexed by region names of any supported scheme, possibly mixed (keys,
        ``Bankssts_L``, ``LT_BANKSSTS``, ``ctx-lh-bankssts``, ENIGMA's ``Laccumb``, abagen's
        integer ids...; :func:`brainexpr.datasets.regions.resolve_names`).
    what : str
        Name of the input for error messages.
    hemisphere : {"left", "right", "both"}, optional
        Hemisphere(s) described by names without one (``"precuneus"``); with ``"both"``
        such a row is used for the left and the right region (same values).

    Raises
    ------
    InputError
        When names are unknown, lack a hemisphere that ``hemisphere`` does not supply, or
        two rows name the same region (both names are given).
    """
    names = list(data.index)
    try:
        resolved = resolve_names(names, hemisphere)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    seen: dict[str, object] = {}
    duplicated, rows, keys = [], [], []
    for position, (name, targets) in enumerate(zip(names, resolved)):
        for key in targets:
            if key in seen:
                duplicated.append(f"{seen[key]!s} and {name!s} (both {key})")
            else:
                seen[key] = name
            rows.append(position)
            keys.append(key)
    if duplicated:
        raise InputError(f"{what} names the same region twice: {'; '.join(duplicated[:10])}")
    if len(rows) > len(names):
        logger.warning("%s: %d region names without a hemisphere are used for both "
                       "hemispheres (same values left and right)", what, len(rows) - len(names))
    out = data.iloc[rows].copy()
    out.index = pd.Index(keys, name="region")
    return out


def restrict_to_covered_hemisphere(keys, available, what: str = "target map") -> list[str]:
    """Keep only one hemisphere's regions when a map covers only that hemisphere.

    The one behaviour of ``associate`` and ``vae`` for a one-hemisphere map (e.g. a
    left-hemisphere ENIGMA table): it is analysed on the regions of the hemisphere it
    covers, with a warning, instead of failing for the other hemisphere's absent regions.

    Parameters
    ----------
    keys : sequence of str
        Region keys of the analysis (both hemispheres).
    available : collection of str
        Region keys the map has values for.
    what : str
        Name of the map in the warning.

    Returns
    -------
    list of str
        ``keys`` unchanged, or those of the only covered hemisphere (midline regions kept).
    """
    hemispheres = region_table()["hemisphere"]
    available = set(available)
    covered = {hemispheres[k] for k in keys if k in available and hemispheres[k] in "LR"}
    wanted = {hemispheres[k] for k in keys if hemispheres[k] in "LR"}
    if len(covered) == 1 and len(wanted) == 2:
        side = covered.pop()
        logger.warning("the %s covers only the %s hemisphere: analysed on its regions there",
                       what, "left" if side == "L" else "right")
        return [k for k in keys if hemispheres[k] in (side, "B")]
    return list(keys)


def select_regions(region_set="cortex", hemisphere: str = "both") -> list[str]:
    """Region keys of a named region set.

    Parameters
    ----------
    region_set : {"cortex", "subcortex", "cortex+subcortex", "all"} or sequence of str
        A named set (structures of :func:`brainexpr.datasets.regions.region_table`;
        ``cortex`` = the 34 Desikan-Killiany cortical regions per hemisphere) or explicit
        region names of any scheme.
    hemisphere : {"both", "left", "right"}

    Returns
    -------
    list of str
        Region keys in the order of the harmonisation table.
    """
    check_choice(hemisphere, HEMISPHERES, "hemisphere")
    table = region_table()
    if isinstance(region_set, str):
        check_choice(region_set, REGION_SETS, "region_set", or_else="a list of region names")
        chosen = table["structure"].isin(REGION_SETS[region_set])
        keys = list(table.index[chosen])
    else:
        keys = to_keys(region_set)
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise InputError(f"region_set names the same region twice: {', '.join(duplicated)}")
    keys = [k for k in keys if table.loc[k, "hemisphere"] in HEMISPHERES[hemisphere]]
    if not keys:
        raise InputError(f"no regions in region_set={region_set!r} with hemisphere={hemisphere!r}")
    return keys


def align_regions(genes: pd.DataFrame, target: pd.Series, regions=None,
                  drop_missing: bool = False, names=("gene table", "target map")):
    """Match a regional gene table and a target map on a set of regions.

    Parameters
    ----------
    genes : pandas.DataFrame
        (regions, genes) expression, indexed by region names of any scheme.
    target : pandas.Series
        Regional target values (e.g. AD tau), indexed by region names of any scheme.
    regions : sequence of str, optional
        Region keys to use (e.g. :func:`select_regions`); default all regions present in both.
    drop_missing : bool
        When False (default) regions of ``regions`` absent from either input, or without a
        value (a NaN target, or NaN for every gene), raise an error naming them and
        suggesting ``--drop-missing``; when True they are dropped with a warning.
    names : (str, str)
        Names of the two inputs in messages.

    Returns
    -------
    genes : pandas.DataFrame
        (n_regions, n_genes) float, index = region keys.
    target : pandas.Series
        (n_regions,) float, same index.

    Raises
    ------
    InputError
        Unknown or duplicated region names, missing regions, NaN or infinite values (the
        regions and genes are named), fewer than 5 common regions.
    """
    genes = to_region_keys(genes, names[0])
    target = to_region_keys(target, names[1])
    try:
        target = pd.to_numeric(target, errors="raise").astype(float)
        values = genes.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the {names[0]} or the {names[1]} has non-numeric values "
                         f"({exc})") from None
    # a region without a target value or without any gene value is a missing region
    empty = set(genes.index[~np.isfinite(values).any(axis=1)])
    empty |= set(target.index[~np.isfinite(target.to_numpy())])
    if regions is None:
        keys = [k for k in genes.index if k in set(target.index)]
    else:
        keys = list(regions)
    absent = {f"absent from the {names[0]}": [k for k in keys if k not in genes.index],
              f"absent from the {names[1]}": [k for k in keys if k not in target.index],
              "without a value (NaN)": [k for k in keys if k in empty]}
    message = "; ".join(f"{len(v)} {n} ({', '.join(v[:12])}"
                        f"{' ...' if len(v) > 12 else ''})" for n, v in absent.items() if v)
    if message:
        if not drop_missing:
            raise InputError(
                f"regions are missing: {message}; choose another region set or drop them "
                "(drop_missing=True, --drop-missing)"
            )
        logger.warning("dropping regions: %s", message)
        keys = [k for k in keys if k in genes.index and k in target.index and k not in empty]
    if len(keys) < 5:
        raise InputError(
            f"only {len(keys)} regions are shared by the {names[0]} and the {names[1]}; "
            "at least 5 are needed (check the region names)"
        )
    target_values = target.loc[keys]
    genes = genes.loc[keys]
    values = genes.to_numpy(dtype=float)
    finite = np.isfinite(values)
    if not finite.all():
        rows = genes.index[~finite.all(axis=1)]
        cols = genes.columns[~finite.all(axis=0)]
        raise InputError(
            f"the {names[0]} has {int((~finite).sum())} missing or infinite values in regions "
            f"{', '.join(map(str, rows[:8]))} (genes {', '.join(map(str, cols[:8]))}); drop "
            "those genes, or those regions with drop_missing (--drop-missing) when they are "
            "empty"
        )
    if np.ptp(target_values.to_numpy()) == 0:
        raise InputError(f"the {names[1]} is constant over the chosen regions")
    return pd.DataFrame(values, index=genes.index, columns=genes.columns), target_values


# --------------------------------------------------------------------------- distances
def parcel_centroids(atlas_image, regions: pd.DataFrame) -> pd.DataFrame:
    """Centre of mass of every parcel of a label image.

    Parameters
    ----------
    atlas_image : nibabel.Nifti1Image
        Integer labels, 0 = background, MNI152 space.
    regions : pandas.DataFrame
        Atlas table with column ``id``; its index names the rows.

    Returns
    -------
    pandas.DataFrame
        (n_regions, 3) columns ``x, y, z``, mm, MNI152.

    Raises
    ------
    InputError
        When a region of ``regions`` has no voxel in the image.
    """
    labels = np.asarray(atlas_image.dataobj).astype(np.int64)
    voxels = np.nonzero(labels > 0)
    ids = labels[voxels]
    size = int(max(ids.max(), regions["id"].max())) + 1
    counts = np.bincount(ids, minlength=size).astype(float)
    mm = np.column_stack([*voxels, np.ones(ids.size)]) @ np.asarray(atlas_image.affine).T
    wanted = regions["id"].to_numpy(np.int64)
    empty = regions.index[counts[wanted] == 0]
    if len(empty):
        raise InputError(f"atlas has no voxels for regions: {', '.join(map(str, empty[:10]))}")
    centroids = np.column_stack([np.bincount(ids, mm[:, k], minlength=size)[wanted]
                                 / counts[wanted] for k in range(3)])
    return pd.DataFrame(centroids, index=regions.index, columns=["x", "y", "z"])


def centroid_distances(centroids: pd.DataFrame) -> pd.DataFrame:
    """Euclidean distances between region centroids.

    Parameters
    ----------
    centroids : pandas.DataFrame
        (n, 3) mm, MNI152 (e.g. :func:`parcel_centroids`).

    Returns
    -------
    pandas.DataFrame
        (n, n) mm, index and columns = the index of ``centroids``.
    """
    xyz = centroids.to_numpy(dtype=float)
    distances = np.sqrt(np.square(xyz[:, None, :] - xyz[None, :, :]).sum(axis=-1))
    return pd.DataFrame(distances, index=centroids.index, columns=centroids.index)


# --------------------------------------------------------------------------- correlations
def _standardise(values: np.ndarray, axis: int) -> np.ndarray:
    centred = values - values.mean(axis=axis, keepdims=True)
    norm = np.sqrt(np.square(centred).sum(axis=axis, keepdims=True))
    return np.divide(centred, norm, out=np.zeros_like(centred), where=norm > 0)


def _ranks(values: np.ndarray, axis: int) -> np.ndarray:
    return stats.rankdata(values, axis=axis)


def _parametric_p(r: np.ndarray, n: int) -> np.ndarray:
    """Two-sided p-value of a correlation coefficient under the t distribution (n - 2 df)."""
    r = np.clip(r, -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt((n - 2) / np.maximum(1.0 - r * r, 1e-300))
    return 2.0 * stats.t.sf(np.abs(t), n - 2)


def _null_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Two-sided empirical p: (1 + #{|null| >= |observed|}) / (1 + n_null), per column."""
    exceed = (np.abs(null) >= np.abs(observed)[None, :] - 1e-12).sum(axis=0)
    return (1.0 + exceed) / (1.0 + null.shape[0])


def _fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values)."""
    return stats.false_discovery_control(np.asarray(p, dtype=float), method="bh")


def correlate_with_target(genes: pd.DataFrame, target: pd.Series, distances=None, *,
                          null_method: str = "variogram", n_surrogates: int = 1000,
                          surrogates=None, random_state=None, return_null: bool = False,
                          **null_options):
    """Correlate every gene map with a target map, with parametric and spatial-null p-values.

    The spatial null keeps the genes fixed and replaces the target by surrogate maps with
    the same spatial autocorrelation (one set of surrogates for all genes, as in
    neuromaps' ``compare_images``). p-values are two-sided; FDR (Benjamini-Hochberg) is
    applied across genes, separately for every p-value column.

    Parameters
    ----------
    genes : pandas.DataFrame
        (n_regions, n_genes) regional expression, aligned with ``target`` (see
        :func:`align_regions`).
    target : pandas.Series
        (n_regions,) target map, same index as ``genes``.
    distances : (n_regions, n_regions) array or DataFrame, mm, optional
        Inter-region distances in the order of ``target`` (a DataFrame is re-ordered by
        its labels). Needed by the variogram and Moran nulls unless ``surrogates`` is
        given; with ``null_method=None`` no spatial null is computed.
    null_method : {"variogram", "moran", "spin", "permutation"} or None
        See :func:`brainexpr.analysis.nulls.generate_surrogates`.
    n_surrogates : int
    surrogates : (n_surrogates, n_regions) array, optional
        Precomputed surrogate target maps (then ``null_method`` only names them).
    random_state : None, int or numpy.random.Generator
    return_null : bool
        Also return the null correlations.
    **null_options
        Passed to the surrogate generator (``spin`` gets ``regions=target.index``, the
        cortical region keys, unless given).

    Returns
    -------
    table : pandas.DataFrame
        Indexed by gene: ``pearson_r``, ``pearson_p``, ``spearman_r``, ``spearman_p``,
        ``pearson_p_spatial``, ``spearman_p_spatial`` (absent with ``null_method=None``),
        and for every p column its FDR q-value (``pearson_q``, ``pearson_q_spatial``...).
        ``table.attrs`` records ``n_regions``, ``null_method`` and ``n_surrogates``.
    null : dict, only with ``return_null=True``
        ``{"pearson": (n_surrogates, n_genes), "spearman": (...), "surrogates":
        (n_surrogates, n_regions)}``.
    """
    if not genes.index.equals(target.index):
        raise InputError("genes and target must share the same region index; use align_regions")
    n = len(target)
    if n < 5:
        raise InputError(f"{n} regions; at least 5 are needed for a correlation")
    x = genes.to_numpy(dtype=float)
    y = target.to_numpy(dtype=float)
    if np.ptp(y) == 0:
        raise InputError("the target map is constant over the chosen regions")
    constant = genes.columns[np.ptp(x, axis=0) == 0]
    if len(constant):
        logger.warning("%d genes are constant over the regions (correlation set to NaN): %s",
                       len(constant), ", ".join(map(str, constant[:10])))
    table = pd.DataFrame(index=pd.Index(genes.columns, name="gene"))
    z_values = {"pearson": _standardise(x, 0), "spearman": _standardise(_ranks(x, 0), 0)}
    z_target = {"pearson": _standardise(y, 0), "spearman": _standardise(_ranks(y, 0), 0)}
    for method in CORRELATION_METHODS:
        r = z_target[method] @ z_values[method]
        r[np.ptp(x, axis=0) == 0] = np.nan
        table[f"{method}_r"] = r
        table[f"{method}_p"] = _parametric_p(r, n)
    null = {}
    if null_method is not None:
        if surrogates is None:
            if distances is not None:
                if isinstance(distances, pd.DataFrame):
                    missing = [k for k in target.index if k not in distances.index]
                    if missing:
                        raise InputError(f"distances lack regions: {', '.join(missing[:12])}")
                    distances = distances.loc[target.index, target.index].to_numpy(dtype=float)
                distances = check_distances(distances, n)
            elif "distances" in NULL_INPUTS.get(null_method, ()):
                raise InputError(
                    f"null_method={null_method!r} needs the inter-region distances "
                    "(distances=...) or precomputed surrogates"
                )
            if "regions" in NULL_INPUTS.get(null_method, ()):
                null_options.setdefault("regions", list(target.index))
            surrogates = generate_surrogates(y, distances, n_surrogates, method=null_method,
                                             random_state=random_state, **null_options)
        surrogates = np.asarray(surrogates, dtype=float)
        if surrogates.ndim != 2 or surrogates.shape[1] != n:
            raise InputError(f"surrogates must be (n_surrogates, {n}), got {surrogates.shape}")
        z_null = {"pearson": _standardise(surrogates, 1),
                  "spearman": _standardise(_ranks(surrogates, 1), 1)}
        for method in CORRELATION_METHODS:
            null_r = z_null[method] @ z_values[method]                  # (n_surrogates, n_genes)
            table[f"{method}_p_spatial"] = _null_p(table[f"{method}_r"].to_numpy(), null_r)
            null[method] = null_r
        null["surrogates"] = surrogates
    for column in [c for c in table.columns if "_p" in c]:
        p = table[column].to_numpy()
        q = np.full_like(p, np.nan)
        ok = np.isfinite(p)
        if ok.any():
            q[ok] = _fdr(p[ok])
        table[column.replace("_p", "_q", 1)] = q
    table.attrs.update(n_regions=n, null_method=null_method,
                       n_surrogates=0 if null_method is None else int(surrogates.shape[0]))
    return (table, null) if return_null else table


# --------------------------------------------------------------------------- two sources
@dataclass
class SourceAgreement:
    """Agreement between the gene-target correlations of two sources of gene maps.

    Attributes
    ----------
    r, p : float
        Pearson correlation across genes between the two sources' correlations, and its
        parametric p-value (genes are not independent; read it as descriptive).
    n_genes : int
    table : pandas.DataFrame
        Indexed by gene: ``first``, ``second`` (the correlations), ``abs_difference``
        (``|second| - |first|``) and ``stronger_in`` (the source with the larger absolute
        correlation), sorted by decreasing ``|abs_difference|``.
    discordant : list of str
        The most discordant genes (largest ``|abs_difference|``).
    names : (str, str)
    """

    r: float
    p: float
    n_genes: int
    table: pd.DataFrame
    discordant: list = field(default_factory=list)
    names: tuple = ("first", "second")

    def to_dict(self) -> dict:
        """Summary numbers (JSON-ready)."""
        rows = self.table.loc[self.discordant]
        return {
            "sources": list(self.names), "r": self.r, "p": self.p, "n_genes": self.n_genes,
            "discordant": [
                {"gene": g, self.names[0]: float(rows.loc[g, "first"]),
                 self.names[1]: float(rows.loc[g, "second"]),
                 "stronger_in": rows.loc[g, "stronger_in"]} for g in self.discordant
            ],
        }


def compare_sources(first: pd.Series, second: pd.Series, n_discordant: int = 6,
                    min_abs_r: float = 0.0, names=("first", "second")) -> SourceAgreement:
    """Compare the gene-target correlations obtained from two sources of gene maps.

    Parameters
    ----------
    first, second : pandas.Series
        Gene-target correlation per gene (e.g. ``table["pearson_r"]`` of
        :func:`correlate_with_target` for abagen-style and INR maps). Only genes present
        (and finite) in both are compared.
    n_discordant : int
        Number of discordant genes to report.
    min_abs_r : float
        Only genes whose absolute correlation reaches this value in at least one source can
        be called discordant (the paper left out genes "with a modest association under
        both"; default 0 keeps all).
    names : (str, str)

    Returns
    -------
    SourceAgreement
    """
    common = first.index.intersection(second.index)
    pair = pd.DataFrame({"first": first.reindex(common), "second": second.reindex(common)})
    pair = pair[np.isfinite(pair.to_numpy(dtype=float)).all(axis=1)]
    if len(pair) < 3:
        raise InputError(
            f"the two sources share {len(pair)} genes with finite correlations; at least 3 "
            "are needed (check that both tables use the same gene symbols)"
        )
    r, p = stats.pearsonr(pair["first"], pair["second"])
    pair["abs_difference"] = pair["second"].abs() - pair["first"].abs()
    pair["stronger_in"] = np.where(pair["abs_difference"] > 0, names[1], names[0])
    pair = pair.reindex(pair["abs_difference"].abs().sort_values(ascending=False).index)
    eligible = pair[np.maximum(pair["first"].abs(), pair["second"].abs()) >= min_abs_r]
    discordant = list(eligible.index[:max(0, int(n_discordant))])
    return SourceAgreement(r=float(r), p=float(p), n_genes=len(pair), table=pair,
                           discordant=discordant, names=tuple(names))


# --------------------------------------------------------------------------- gene axis
@dataclass
class AxisGradient:
    """Change of the gene-target correlation along the gene axis.

    Attributes
    ----------
    r : float
        Correlation (``method``) across genes between axis position and gene-target
        correlation.
    p : float
        Parametric p-value.
    p_permutation : float
        Two-sided p-value from shuffling the axis positions over genes.
    p_spatial : float or None
        Two-sided p-value from recomputing the gene-target correlations with surrogate
        target maps (spatial null): does the real target give a stronger gradient than
        maps with the same spatial autocorrelation? ``None`` without a null.
    n_genes, n_permutations, n_surrogates : int
    method : str
    """

    r: float
    p: float
    p_permutation: float
    p_spatial: float | None
    n_genes: int
    n_permutations: int
    n_surrogates: int
    method: str

    def to_dict(self) -> dict:
        """Summary numbers (JSON-ready)."""
        return dict(self.__dict__)


def _correlate(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Correlation of the vector ``a`` with each row of ``b`` (n,) x (m, n) -> (m,)."""
    if method == "spearman":
        a, b = _ranks(a, 0), _ranks(b, -1)
    return _standardise(np.atleast_2d(b), 1) @ _standardise(a, 0)


def axis_gradient(correlations: pd.Series, axis_position: pd.Series, *, method: str = "spearman",
                  n_permutations: int = 10000, null_correlations=None,
                  random_state=None) -> AxisGradient:
    """Test whether gene-target correlations change monotonically along the gene axis.

    The sign of a spectral gene axis is arbitrary, so all tests are two-sided.

    Parameters
    ----------
    correlations : pandas.Series
        Gene-target correlation per gene.
    axis_position : pandas.Series
        Position of each gene on the gene axis (e.g. the spectral embedding).
    method : {"spearman", "pearson"}
    n_permutations : int
        Shuffles of the axis positions over genes.
    null_correlations : (n_surrogates, n_genes) array, optional
        Gene-target correlations with surrogate targets, in the gene order of
        ``correlations`` (from ``correlate_with_target(..., return_null=True)``); gives
        ``p_spatial``.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    AxisGradient
    """
    check_choice(method, CORRELATION_METHODS, "method")
    genes = [g for g in correlations.index if g in axis_position.index]
    values = correlations.reindex(genes).to_numpy(dtype=float)
    position = axis_position.reindex(genes).to_numpy(dtype=float)
    ok = np.isfinite(values) & np.isfinite(position)
    if ok.sum() < 4:
        raise InputError(
            f"{int(ok.sum())} genes have both a correlation and an axis position; at least 4 "
            "are needed (check the gene symbols of the gene axis)"
        )
    values, position = values[ok], position[ok]
    observed = float(_correlate(position, values[None, :], method)[0])
    p = float(_parametric_p(np.array([observed]), values.size)[0])
    rng = check_random_state(random_state)
    shuffled = np.argsort(rng.random((int(n_permutations), values.size)), axis=1)
    null = _correlate(values, position[shuffled], method)
    p_permutation = float(_null_p(np.array([observed]), null[:, None])[0])
    p_spatial, n_surrogates = None, 0
    if null_correlations is not None:
        null_correlations = np.asarray(null_correlations, dtype=float)
        if null_correlations.shape[-1] != len(correlations):
            raise InputError(
                f"null_correlations has {null_correlations.shape[-1]} genes, expected "
                f"{len(correlations)} (the genes of correlations, in order)"
            )
        columns = correlations.index.get_indexer(genes)[ok]
        spatial = _correlate(position, null_correlations[:, columns], method)
        p_spatial = float(_null_p(np.array([observed]), spatial[:, None])[0])
        n_surrogates = int(null_correlations.shape[0])
    return AxisGradient(r=observed, p=p, p_permutation=p_permutation, p_spatial=p_spatial,
                        n_genes=int(values.size), n_permutations=int(n_permutations),
                        n_surrogates=n_surrogates, method=method)


# --------------------------------------------------------------------------- Open Targets
def open_targets_association(correlations: pd.Series, scores: pd.Series, *,
                             absolute: bool = True, missing: str = "drop",
                             method: str = "pearson") -> dict:
    """Correlation across genes between gene-target correlation and Open Targets score.

    Parameters
    ----------
    correlations : pandas.Series
        Gene-target correlation per gene.
    scores : pandas.Series
        Open Targets global association score per gene symbol
        (:func:`brainexpr.datasets.load_open_targets`).
    absolute : bool
        Use ``|r|`` (default: a gene can matter whether it follows tau or its inverse) or
        the signed correlation.
    missing : {"drop", "zero"}
        Genes without an Open Targets score are dropped (default) or scored 0 (Open Targets
        lists only targets with some evidence).
    method : {"pearson", "spearman"}

    Returns
    -------
    dict
        ``r``, ``p`` (parametric), ``n_genes`` (used), ``n_unscored`` (genes without a
        score), ``absolute``, ``missing``, ``method``.
    """
    if missing not in ("drop", "zero"):
        raise InputError(f"missing must be 'drop' or 'zero', got {missing!r}")
    check_choice(method, CORRELATION_METHODS, "method")
    values = correlations[np.isfinite(correlations.to_numpy(dtype=float))]
    score = scores.reindex(values.index)
    unscored = int(score.isna().sum())
    score = score.fillna(0.0) if missing == "zero" else score.dropna()
    values = values.reindex(score.index)
    if absolute:
        values = values.abs()
    if len(values) < 4:
        raise InputError(f"only {len(values)} genes have an Open Targets score; at least 4 needed")
    test = stats.pearsonr if method == "pearson" else stats.spearmanr
    r, p = test(values.to_numpy(dtype=float), score.to_numpy(dtype=float))
    return {"r": float(r), "p": float(p), "n_genes": int(len(values)), "n_unscored": unscored,
            "absolute": bool(absolute), "missing": missing, "method": method}
