"""Synthetic AHBA downloads in the exact raw format, with known truth.

No sample-level AHBA expression is available offline, so the pipeline is tested on
donors written here from real layouts:

* samples: the real ``SampleAnnot.csv`` of donor 9861 (copied byte for byte) and the real
  sample table of the 3,702 samples for the other five donors (same well ids, structures
  and coordinates, rewritten in the raw column order);
* ontology: an ``Ontology.csv`` built from the structures of those samples, with the
  Allen ids of the gross classes (cerebral cortex 4008, hippocampal formation 4249,
  cerebral nuclei 4275, diencephalon 4391, cerebellum 4696, mesencephalon 9001, pons 9131,
  white matter 9218, myelencephalon 9512) on every ``structure_id_path`` and a counterpart
  in the other hemisphere for every lateralised structure;
* probes: real Agilent probe names and genes from the reannotation table (plus probes
  that the reannotation drops);
* values: log2 intensities ``base + amplitude * f_gene(x) + donor offset + noise`` where
  ``f_gene`` is a known smooth field of the corrected MNI coordinates ``x``; PA calls are
  1 exactly where the value exceeds a known background.

Each gene has a *signal* probe (large amplitude, little noise), optionally a *noisy* probe
(small amplitude, large noise) and a *low* probe (below background in most samples), so
the expected outcome of intensity-based filtering and probe selection is known.
``full_size=True`` writes all 58,692 probes for the real sample counts (the benchmark).
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets.loaders import DONORS
from ..utils import check_random_state, progress
from .io import ANNOTATION_COLUMNS, DONOR_FOLDER, ONTOLOGY_COLUMNS, check_donors

logger = logging.getLogger(__name__)

N_PROBES_FULL = 58692
FIRST_PROBE_ID = 1058685
BACKGROUND = 4.5
SAMPLE_TABLE = "samples/ahba-epilepsy/fsa_aparc+aseg_mod_sample_info_newmni.csv"
DONOR9861_ANNOT = "samples/donor9861/SampleAnnot.csv"
REANNOTATOR = "samples/ahba-epilepsy/AHBA_probe2gene_reannotator.txt"

#: role -> (base log2 intensity, field amplitude, noise sd)
ROLES = {"signal": (7.0, 2.0, 0.15), "noisy": (7.0, 0.3, 1.0), "low": (3.0, 0.5, 0.3),
         "unannotated": (7.0, 1.0, 0.5)}


# --------------------------------------------------------------------------- layouts
def raw_sample_table(uid: int, data_dir=None) -> pd.DataFrame:
    """Return the real samples of one donor in the ``SampleAnnot.csv`` column layout."""
    from ..datasets import fetch_file

    uid = check_donors([uid])[0]
    if uid == 9861:
        return pd.read_csv(fetch_file(DONOR9861_ANNOT, data_dir=data_dir))
    table = pd.read_csv(fetch_file(SAMPLE_TABLE, data_dir=data_dir))
    label = DONORS.set_index("uid").loc[uid, "sample_label"]
    return table.loc[table["sampleID"] == label, ANNOTATION_COLUMNS].reset_index(drop=True)


_HIPPOCAMPAL = re.compile(r"\b(CA[1-4] field|dentate gyrus|subiculum)\b", re.I)
_WHITE = re.compile(r"corpus callosum|white matter|internal capsule", re.I)
_DIENCEPHALON = re.compile(r"thalam|geniculate|subthalamic|mammillary|zona incerta|"
                           r"hypothalam|pulvinar|habenul|epithalam|preoptic|tuberal", re.I)
_MIDBRAIN = re.compile(r"midbrain|substantia nigra|red nucleus|colliculus|tegmental|oculomotor|"
                       r"trochlear|edinger|cajal|darkschewitsch|pretectal|cuneiform", re.I)
_MEDULLA = re.compile(r"medull|olivary complex|inferior olivary|hypoglossal|vagus|cuneate|gracile|"
                      r"arcuate|gigantocellular|spinal trigeminal|vestibular|cochlear", re.I)

#: class node id -> (acronym, name, path of ancestors)
_CLASS_NODES = {
    4005: ("Br", "brain", "/4005/"),
    4006: ("GM", "gray matter", "/4005/4006/"),
    4007: ("Tel", "telencephalon", "/4005/4006/4007/"),
    4008: ("CTX", "cerebral cortex", "/4005/4006/4007/4008/"),
    4249: ("HiF", "hippocampal formation", "/4005/4006/4007/4008/4249/"),
    4275: ("CN", "cerebral nuclei", "/4005/4006/4007/4275/"),
    4391: ("DiE", "diencephalon", "/4005/4006/4391/"),
    4833: ("MET", "metencephalon", "/4005/4006/4833/"),
    4696: ("Cb", "cerebellum", "/4005/4006/4833/4696/"),
    9001: ("MES", "mesencephalon", "/4005/4006/9001/"),
    9131: ("Pons", "pons", "/4005/4006/4833/9131/"),
    9512: ("MY", "myelencephalon", "/4005/4006/9512/"),
    9218: ("WM", "white matter", "/4005/9218/"),
    9352: ("SS", "sulci & spaces", "/4005/9352/"),
}


def _hemisphere(name: str) -> str:
    lower = name.lower()
    if re.search(r"\bleft\b", lower):
        return "L"
    if re.search(r"\bright\b", lower):
        return "R"
    return ""


def _class_node(slab_type: str, name: str, cortical_vote: float) -> int:
    if slab_type == "CB":
        return 4696
    if slab_type == "BS":
        return 9001 if _MIDBRAIN.search(name) else 9512 if _MEDULLA.search(name) else 9131
    if _HIPPOCAMPAL.search(name):
        return 4249
    if _WHITE.search(name):
        return 9218
    if cortical_vote >= 0.5:
        return 4008
    return 4391 if _DIENCEPHALON.search(name) else 4275


def _swap_name(name: str, hemisphere: str) -> str:
    new = "right" if hemisphere == "L" else "left"
    return re.sub(r"\b(left|right)\b", new, name, count=1)


def build_ontology(data_dir=None) -> pd.DataFrame:
    """Build an ``Ontology.csv`` covering every structure sampled in the six donors.

    Returns
    -------
    pandas.DataFrame
        Allen layout (:data:`brainexpr.ahba.io.ONTOLOGY_COLUMNS`); ``hemisphere`` is L, R
        or empty; lateralised structures without a sampled counterpart get one (id +
        900000) so that mirroring finds it.
    """
    from ..datasets import fetch_file

    table = pd.read_csv(fetch_file(SAMPLE_TABLE, data_dir=data_dir))
    cortical = (table["probe2label"].between(1000, 1035) | table["probe2label"].between(2000, 2035))
    vote = cortical.groupby(table["structure_id"]).mean()
    structures = table.drop_duplicates("structure_id").set_index("structure_id")
    rows = []
    for sid, row in structures.iterrows():
        name = str(row["structure_name"])
        node = _class_node(str(row["slab_type"]), name, float(vote.loc[sid]))
        rows.append({"id": int(sid), "acronym": row["structure_acronym"], "name": name,
                     "parent_structure_id": node, "hemisphere": _hemisphere(name),
                     "structure_id_path": f"{_CLASS_NODES[node][2]}{int(sid)}/"})
    frame = pd.DataFrame(rows)
    present = set(zip(frame["acronym"], frame["hemisphere"]))
    twins = []
    for row in frame.itertuples(index=False):
        if row.hemisphere in ("L", "R"):
            other = "R" if row.hemisphere == "L" else "L"
            if (row.acronym, other) not in present:
                twin_id = 900000 + int(row.id)
                twins.append({"id": twin_id, "acronym": row.acronym,
                              "name": _swap_name(row.name, row.hemisphere),
                              "parent_structure_id": row.parent_structure_id, "hemisphere": other,
                              "structure_id_path": f"{_CLASS_NODES[row.parent_structure_id][2]}"
                                                   f"{twin_id}/"})
                present.add((row.acronym, other))
    nodes = [{"id": nid, "acronym": acr, "name": name,
              "parent_structure_id": int(path.strip("/").split("/")[-2]) if path.count("/") > 2 else "",
              "hemisphere": "", "structure_id_path": path}
             for nid, (acr, name, path) in _CLASS_NODES.items()]
    ontology = pd.concat([pd.DataFrame(nodes), frame, pd.DataFrame(twins)], ignore_index=True)
    ontology["graph_order"] = np.arange(len(ontology))
    ontology["color_hex_triplet"] = "A0A0A0"
    return ontology[ONTOLOGY_COLUMNS]


# --------------------------------------------------------------------------- field
@dataclass
class SmoothField:
    """Known smooth expression fields, one per gene, in [-1, 1].

    ``f_g(x) = tanh(sum_k w_gk cos(2 pi d_gk . x / lambda_gk + phi_gk))`` with unit
    directions ``d``, wavelengths ``lambda`` of 80-200 mm, phases ``phi`` and weights
    ``w`` (three terms per gene).
    """

    directions: np.ndarray   # (n_genes, 3, 3)
    wavelengths: np.ndarray  # (n_genes, 3)
    phases: np.ndarray       # (n_genes, 3)
    weights: np.ndarray      # (n_genes, 3)

    @classmethod
    def random(cls, n_genes: int, random_state=None) -> "SmoothField":
        rng = check_random_state(random_state)
        directions = rng.normal(size=(n_genes, 3, 3))
        directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
        return cls(directions=directions, wavelengths=rng.uniform(80, 200, (n_genes, 3)),
                   phases=rng.uniform(0, 2 * np.pi, (n_genes, 3)),
                   weights=rng.uniform(0.4, 1.0, (n_genes, 3)))

    def __call__(self, coords) -> np.ndarray:
        """Evaluate every gene at ``coords`` ((n, 3) mm, MNI152) -> (n, n_genes)."""
        coords = np.asarray(coords, dtype=np.float32)
        total = np.zeros((len(coords), len(self.phases)), dtype=np.float32)
        for k in range(self.phases.shape[1]):
            proj = coords @ self.directions[:, k, :].T
            total += (self.weights[:, k] * np.cos(2 * np.pi * proj / self.wavelengths[:, k]
                                                  + self.phases[:, k])).astype(np.float32)
        return np.tanh(total)


@dataclass
class SyntheticTruth:
    """What a synthetic download was built from.

    Attributes
    ----------
    folder : Path
        The raw folder (pass it to :func:`brainexpr.ahba.process_ahba`).
    probes : pandas.DataFrame
        Indexed by ``probe_id``: ``probe_name``, ``gene_symbol`` (reannotated),
        ``role`` (signal, noisy, low, unannotated), ``gene_index`` (column of the field,
        -1 for none).
    genes : list of str
        Genes with a field (column order of ``field``).
    field : SmoothField or callable
        ``field(coords)`` -> (n, n_genes) (column order of ``genes``).
    donor_offsets : dict of int -> float
    background : float
        PA call is 1 exactly where the value exceeds it.
    """

    folder: Path
    probes: pd.DataFrame
    genes: list
    field: SmoothField
    donor_offsets: dict = field(default_factory=dict)
    background: float = BACKGROUND


def _reannotation(data_dir):
    from .probes import load_reannotation

    return load_reannotation(data_dir)


def _unannotated_names(reannotation: pd.DataFrame, data_dir) -> list[str]:
    from ..datasets import fetch_file

    names = pd.read_csv(fetch_file(REANNOTATOR, data_dir=data_dir), sep="\t", header=None)[0]
    return sorted(set(names) - set(reannotation["probe_name"]))


def _design_small(n_genes: int, rng, data_dir):
    reannot = _reannotation(data_dir)
    valid = reannot.dropna(subset=["entrez_id"])
    sizes = valid.groupby("gene_symbol").size()
    candidates = np.array(sorted(sizes[sizes >= 3].index))
    genes = sorted(rng.choice(candidates, size=n_genes, replace=False))
    rows = []
    for gi, gene in enumerate(genes):
        names = valid.loc[valid["gene_symbol"] == gene, "probe_name"].to_numpy()
        names = rng.permutation(names)
        roles = ["signal", "low"] if gi % 5 == 0 else ["signal", "noisy", "low"]
        for name, role in zip(names, roles):
            rows.append({"probe_name": name, "gene_symbol": gene, "role": role, "gene_index": gi})
    # probes the reannotation drops: unknown names and names without an Entrez id
    for name in rng.choice(_unannotated_names(reannot, data_dir), size=6, replace=False):
        rows.append({"probe_name": name, "gene_symbol": "na", "role": "unannotated",
                     "gene_index": -1})
    no_entrez = reannot.loc[reannot["entrez_id"].isna()]
    for name, gene in no_entrez.iloc[:3][["probe_name", "gene_symbol"]].to_numpy():
        rows.append({"probe_name": name, "gene_symbol": gene, "role": "unannotated",
                     "gene_index": -1})
    return pd.DataFrame(rows), list(genes)


def _design_full(rng, data_dir):
    reannot = _reannotation(data_dir)
    genes = sorted(reannot.dropna(subset=["entrez_id"])["gene_symbol"].unique())
    gene_index = {g: i for i, g in enumerate(genes)}
    frame = reannot[["probe_name", "gene_symbol", "entrez_id"]].copy()
    frame = frame.iloc[rng.permutation(len(frame))]
    first = ~frame["gene_symbol"].duplicated()
    valid = frame["entrez_id"].notna().to_numpy()
    roles = np.where(rng.random(len(frame)) < 0.4, "noisy", "low").astype(object)
    roles[first.to_numpy()] = "signal"
    roles[~valid] = "unannotated"
    frame["role"] = roles
    frame["gene_index"] = [gene_index.get(g, -1) if v else -1
                           for g, v in zip(frame["gene_symbol"], valid)]
    extra = _unannotated_names(reannot, data_dir)
    n_pad = N_PROBES_FULL - len(frame) - len(extra)
    pad = [f"CUST_{90000 + i}_PI999999999" for i in range(max(n_pad, 0))]
    others = pd.DataFrame({"probe_name": extra + pad, "gene_symbol": "na",
                           "role": np.where(rng.random(len(extra) + len(pad)) < 0.5, "low",
                                            "unannotated").astype(object),
                           "gene_index": -1})
    table = pd.concat([frame.drop(columns="entrez_id"), others], ignore_index=True)
    return table.iloc[:N_PROBES_FULL], genes


# --------------------------------------------------------------------------- writers
def format_matrix_rows(probe_ids, values, decimals: int = 6) -> bytes:
    """Format rows ``probe_id,v1,v2,...`` quickly (vectorised, values in [0, 100)).

    Parameters
    ----------
    probe_ids : (n,) int array
    values : (n, m) float array
        Written with ``decimals`` decimals; 0/1 integer arrays are written as ``0``/``1``
        when ``decimals`` is 0.
    """
    values = np.asarray(values)
    n, m = values.shape
    if decimals == 0:
        digits = np.clip(np.rint(values), 0, 9).astype(np.uint8) + 48
        buf = np.empty((n, m, 2), dtype=np.uint8)
        buf[:, :, 0] = digits
        buf[:, :, 1] = ord(",")
        buf[:, -1, 1] = ord("\n")
        body = buf.reshape(n, -1)
        heads = [f"{int(p)},".encode() for p in probe_ids]
        return b"".join(h + row.tobytes() for h, row in zip(heads, body))
    scale = 10 ** decimals
    q = np.rint(np.clip(values, 0, 99.999999).astype(np.float64) * scale).astype(np.int64)
    integer, fraction = (q // scale).astype(np.int32), (q % scale).astype(np.int32)
    width = 3 + decimals + 1
    buf = np.empty((n, m, width), dtype=np.uint8)
    buf[:, :, 0] = integer // 10 + 48
    buf[:, :, 1] = integer % 10 + 48
    buf[:, :, 2] = ord(".")
    for k in range(decimals - 1, -1, -1):  # last digit first, dividing as we go
        fraction, digit = np.divmod(fraction, 10)
        buf[:, :, 3 + k] = digit + 48
    buf[:, :, -1] = ord(",")
    buf[:, -1, -1] = ord("\n")
    keep = np.ones((n, m, width), dtype=bool)
    keep[:, :, 0] = integer >= 10
    body, keep = buf.reshape(n, -1), keep.reshape(n, -1)
    heads = [f"{int(p)},".encode() for p in probe_ids]
    return b"".join(h + row[k].tobytes() for h, row, k in zip(heads, body, keep))


def _probes_csv(probes: pd.DataFrame, reannot: pd.DataFrame) -> pd.DataFrame:
    entrez = reannot.drop_duplicates("probe_name").set_index("probe_name")["entrez_id"]
    symbol = probes["gene_symbol"].where(probes["role"] != "unannotated", "na")
    return pd.DataFrame({
        "probe_id": probes.index.to_numpy(),
        "probe_name": probes["probe_name"].to_numpy(),
        "gene_id": 1000000 + probes["gene_index"].clip(lower=-1).to_numpy() + 1,
        "gene_symbol": symbol.to_numpy(),
        "gene_name": symbol.to_numpy(),
        "entrez_id": probes["probe_name"].map(entrez).astype("Int64").to_numpy(),
        "chromosome": "",
    })


def write_synthetic_download(out_dir, *, donors="all", n_genes: int = 40, full_size: bool = False,
                             max_samples: int | None = None, layout: str = "allen", field=None,
                             random_state=0, data_dir=None) -> SyntheticTruth:
    """Write a synthetic raw AHBA download.

    Parameters
    ----------
    out_dir : path-like
        Folder to write into (created; existing donor folders are replaced).
    donors : "all" or sequence
        Donors to write (uids or names).
    n_genes : int
        Genes with three probes each (small mode).
    full_size : bool
        Write all 58,692 probes (every probe name of the reannotation tables, padded with
        synthetic names) for the real sample counts: about 2 GB of CSV for six donors.
    max_samples : int, optional
        Keep at most this many samples per donor (evenly spaced; default all).
    layout : {"allen", "abagen"}
        ``allen``: donor folders directly in ``out_dir``; ``abagen``: under
        ``out_dir/microarray/``.
    field : callable, optional
        ``field(coords) -> (n, k)`` values of order 1 for ``k >= n_genes`` genes (column
        ``i`` drives gene ``i``), e.g. ``make_phantom(n_genes).truth`` of
        :mod:`brainexpr.evaluation.phantom`; default a random :class:`SmoothField`.
    random_state : int or Generator
    data_dir : path-like, optional
        Reference data folder (sample tables, reannotation, corrected coordinates).

    Returns
    -------
    SyntheticTruth
    """
    from .probes import load_reannotation
    from .samples import load_corrected_coordinates

    rng = check_random_state(random_state)
    uids = check_donors(donors)
    out = Path(out_dir)
    root = out / "microarray" if layout == "abagen" else out
    if layout not in ("allen", "abagen"):
        raise ValueError(f"layout must be 'allen' or 'abagen', got {layout!r}")
    design, genes = _design_full(rng, data_dir) if full_size else _design_small(n_genes, rng, data_dir)
    ids = FIRST_PROBE_ID + np.sort(rng.choice(np.arange(len(design) * 2), len(design), replace=False))
    design = design.iloc[rng.permutation(len(design))].reset_index(drop=True)
    design.index = pd.Index(ids, name="probe_id")
    reannot = load_reannotation(data_dir)
    probes_csv = _probes_csv(design, reannot)
    fieldmaker = SmoothField.random(len(genes), rng) if field is None else field
    ontology = build_ontology(data_dir)
    corrected = load_corrected_coordinates(data_dir)
    base = design["role"].map(lambda r: ROLES[r][0]).to_numpy()
    amp = design["role"].map(lambda r: ROLES[r][1]).to_numpy()
    noise = design["role"].map(lambda r: ROLES[r][2]).to_numpy()
    gene_col = design["gene_index"].to_numpy()
    offsets = {}
    for uid in uids:
        folder = root / DONOR_FOLDER.format(uid=uid)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        annot = raw_sample_table(uid, data_dir)
        if max_samples is not None and len(annot) > max_samples:
            keep = np.unique(np.linspace(0, len(annot) - 1, max_samples).round().astype(int))
            annot = annot.iloc[keep].reset_index(drop=True)
            annot.to_csv(folder / "SampleAnnot.csv", index=False)
        elif uid == 9861:
            from ..datasets import fetch_file

            shutil.copyfile(fetch_file(DONOR9861_ANNOT, data_dir=data_dir), folder / "SampleAnnot.csv")
        else:
            annot.to_csv(folder / "SampleAnnot.csv", index=False)
        probes_csv.to_csv(folder / "Probes.csv", index=False)
        ontology.to_csv(folder / "Ontology.csv", index=False)
        coords = corrected.reindex(annot["well_id"].to_numpy()).to_numpy()
        fallback = annot[["mni_x", "mni_y", "mni_z"]].to_numpy(float)
        coords = np.where(np.isfinite(coords), coords, fallback)
        truth = np.asarray(fieldmaker(coords), dtype=np.float32)[:, :len(genes)].T
        if truth.shape[0] != len(genes):
            raise ValueError(f"field returned {truth.shape[0]} genes, {len(genes)} needed")
        offsets[uid] = float(rng.normal(0, 0.3))
        chunk = 4096
        with open(folder / "MicroarrayExpression.csv", "wb") as micro, \
                open(folder / "PACall.csv", "wb") as pacall:
            for start in progress(range(0, len(design), chunk), desc=f"donor {uid}"):
                stop = min(start + chunk, len(design))
                signal = np.where(gene_col[start:stop, None] >= 0,
                                  truth[np.maximum(gene_col[start:stop], 0)], 0.0)
                values = (base[start:stop, None] + amp[start:stop, None] * signal + offsets[uid]
                          + noise[start:stop, None]
                          * rng.standard_normal((stop - start, len(annot)), dtype=np.float32))
                values = np.round(np.clip(values, 0.5, 15.5), 6)
                micro.write(format_matrix_rows(ids[start:stop], values))
                pacall.write(format_matrix_rows(ids[start:stop], values > BACKGROUND, decimals=0))
        logger.info("wrote synthetic donor %d: %d probes x %d samples", uid, len(design), len(annot))
    return SyntheticTruth(folder=out, probes=design, genes=list(genes), field=fieldmaker,
                          donor_offsets=offsets, background=BACKGROUND)
