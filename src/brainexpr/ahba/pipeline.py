"""The AHBA raw-data pipeline: from the Allen download to sample and regional tables.

:func:`process_ahba` runs abagen's standard workflow (Markello et al. 2021;
Arnatkeviciute et al. 2019) with abagen's option names and defaults:

1. read and validate the raw files of every donor (:mod:`.io`; parsed once, then cached);
2. reannotate probes and drop those without an Entrez id (``reannotated``);
3. add hemisphere and structural class from the ontology, replace coordinates by the
   non-linearly corrected ones (``corrected_mni``), mirror samples (``lr_mirror``), drop
   samples whose coordinates contradict their hemisphere, optionally drop dissimilar
   samples (``sim_threshold``);
4. intensity-based filtering of probes (``ibf_threshold``);
5. one probe (or the probe average) per gene (``probe_selection``, ``donor_probes``);
6. match samples to atlas regions within ``tolerance`` mm, constrained by hemisphere and
   structural division;
7. normalise each sample across genes (``sample_norm``) and each gene across samples
   (``gene_norm``), on matched samples only (``norm_matched``), optionally within
   structural classes (``norm_structures``);
8. fill regions without samples (``missing``), aggregate samples per region and donor and
   across donors (``region_agg``, ``agg_metric``), and compute the differential stability
   of every gene;
9. write the Methods paragraph for exactly these options.

The result of a run is cached under ``<cache_dir>/ahba-results/<key>/``, the key hashing
the inputs (size and modification time of every raw file), the atlas and every option,
so that repeating a run takes seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..datasets.validate import check_choice
from ..errors import InputError
from . import aggregate as agg
from . import normalize, probes as probes_, samples as samples_
from .io import (CACHE_FORMAT, ProcessedAHBA, default_cache_dir, donor_files, file_fingerprint,
                 find_donor_dirs, hash_key, load_donor, load_processed, write_processed)
from .report import methods_report

logger = logging.getLogger(__name__)

#: abagen's defaults of ``get_expression_data`` (the options this pipeline implements).
DEFAULTS = {
    "ibf_threshold": 0.5,
    "probe_selection": "diff_stability",
    "donor_probes": "aggregate",
    "sim_threshold": None,
    "lr_mirror": None,
    "missing": None,
    "tolerance": 2.0,
    "sample_norm": "srs",
    "gene_norm": "srs",
    "norm_matched": True,
    "norm_structures": False,
    "region_agg": "donors",
    "agg_metric": "mean",
    "corrected_mni": True,
    "reannotated": True,
}

#: Allowed values of the string options (one registry; errors name parameter and values).
CHOICES = {
    "probe_selection": tuple(probes_.SELECTION_METHODS),
    "donor_probes": probes_.DONOR_PROBES,
    "lr_mirror": samples_.MIRROR_OPTIONS,
    "missing": agg.MISSING,
    "sample_norm": (None,) + tuple(normalize.NORMALIZATION_METHODS),
    "gene_norm": (None,) + tuple(normalize.NORMALIZATION_METHODS),
    "region_agg": agg.REGION_AGG,
    "agg_metric": agg.AGG_METRICS,
}


def check_options(**options) -> dict:
    """Validate workflow options and fill in abagen's defaults.

    Raises
    ------
    InputError
        Naming the parameter, the allowed values and the value received.
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    out = dict(DEFAULTS)
    out.update(options)
    for name, allowed in CHOICES.items():
        check_choice(out[name], allowed, name)
    try:
        out["ibf_threshold"] = float(out["ibf_threshold"])
        out["tolerance"] = float(out["tolerance"])
        if out["sim_threshold"] is not None:
            out["sim_threshold"] = float(out["sim_threshold"])
    except (TypeError, ValueError):
        raise InputError("ibf_threshold, tolerance and sim_threshold must be numbers") from None
    if not 0.0 <= out["ibf_threshold"] <= 1.0:
        raise InputError(f"ibf_threshold must lie in [0, 1]; got {out['ibf_threshold']}")
    if out["tolerance"] < 0:
        raise InputError(f"tolerance must be >= 0 mm; got {out['tolerance']}")
    if out["sim_threshold"] is not None and out["sim_threshold"] <= 0:
        raise InputError(f"sim_threshold must be positive; got {out['sim_threshold']}")
    for flag in ("norm_matched", "norm_structures", "corrected_mni", "reannotated"):
        if not isinstance(out[flag], (bool, np.bool_)):
            raise InputError(f"{flag} must be True or False; got {out[flag]!r}")
        out[flag] = bool(out[flag])
    if out["probe_selection"] in probes_.AGGREGATE_ONLY and out["donor_probes"] != "aggregate":
        logger.warning("probe_selection=%r always uses all donors together; donor_probes=%r is "
                       "ignored", out["probe_selection"], out["donor_probes"])
        out["donor_probes"] = "aggregate"
    return out


# --------------------------------------------------------------------------- atlas
def resolve_atlas(atlas="dk83", atlas_info=None, data_dir=None):
    """Load the atlas image and its region table.

    Parameters
    ----------
    atlas : str, path-like or nibabel image
        A name of :data:`brainexpr.datasets.ATLASES` (``dk83`` default, ``dk83-abagen``,
        ``brainnetome246``) or a NIfTI parcellation in MNI152 space.
    atlas_info : path-like or pandas.DataFrame, optional
        Required for a custom image: columns ``id``, ``hemisphere`` (L/R/B), ``structure``
        (cortex, subcortex/brainstem, cerebellum). Rows are named by the DataFrame's index
        when it is not a plain range (e.g. region keys), else by a unique ``label`` column,
        else by ``id``.

    Returns
    -------
    image : nibabel.Nifti1Image
    regions : pandas.DataFrame
        Indexed by region key (named atlases: :mod:`brainexpr.datasets.regions` keys such
        as ``L_bankssts``), columns ``id``, ``hemisphere``, ``structure``.
    name : str
        Human-readable description for the Methods paragraph.
    fingerprint : str
        Hash of the atlas content (cache key material).
    """
    from ..atlas import check_mni_image
    from ..atlas.matching import structure_division
    from ..datasets import ATLASES, load_atlas

    if isinstance(atlas, str) and atlas in ATLASES:
        loaded = load_atlas(atlas, data_dir=data_dir)
        image, regions = loaded.image, loaded.regions.copy()
        descriptions = {"dk83": "the 83-region Desikan-Killiany atlas (MNI152, 1 mm)",
                        "dk83-abagen": "the 83-region Desikan-Killiany atlas of abagen (MNI152)",
                        "brainnetome246": "the 246-region Brainnetome atlas (MNI152, 1 mm)"}
        name = descriptions.get(atlas, atlas)
    else:
        if isinstance(atlas, str) and not Path(atlas).expanduser().is_file():
            check_choice(atlas, ATLASES, "atlas", or_else="an existing NIfTI file")
        image = check_mni_image(atlas if not isinstance(atlas, (str, os.PathLike))
                                else str(Path(atlas).expanduser()), "atlas", ndim=(3,))
        if atlas_info is None:
            raise InputError("a custom atlas needs atlas_info: a CSV with columns id, hemisphere "
                             "(L/R/B) and structure (cortex, subcortex/brainstem, cerebellum)")
        regions = atlas_info.copy() if isinstance(atlas_info, pd.DataFrame) \
            else pd.read_csv(Path(atlas_info).expanduser())
        missing = [c for c in ("id", "hemisphere", "structure") if c not in regions.columns]
        if missing:
            raise InputError(f"atlas_info lacks column(s) {', '.join(missing)}; expected id, "
                             f"hemisphere, structure")
        if isinstance(atlas_info, pd.DataFrame) and not isinstance(regions.index, pd.RangeIndex):
            pass  # a table already indexed by region names (e.g. region keys)
        elif "label" in regions.columns and regions["label"].is_unique:
            regions = regions.set_index("label")
        else:
            regions.index = regions["id"].astype(str)
        regions.index.name = "region"
        name = f"a {len(regions)}-region atlas"
    regions["id"] = regions["id"].astype(int)
    bad_hemi = sorted(set(regions["hemisphere"]) - {"L", "R", "B"})
    if bad_hemi:
        raise InputError(f"atlas_info hemisphere values must be L, R or B; got {bad_hemi}")
    structure_division(regions["structure"])  # raises on unknown classes
    data = np.asarray(image.dataobj)
    digest = hashlib.sha256(np.ascontiguousarray(data).tobytes())
    digest.update(np.asarray(image.affine).tobytes())
    digest.update(regions.to_csv().encode())
    return image, regions[["id", "hemisphere", "structure"]], name, digest.hexdigest()[:20]


# --------------------------------------------------------------------------- helpers
def _label_to_key(regions: pd.DataFrame) -> dict:
    return {int(i): str(k) for k, i in regions["id"].items()}


def _prepare_samples(donor, opts, corrected, data_dir):
    """Ontology classes, corrected coordinates, mirroring, mismatch drop for one donor."""
    files = donor_files(donor.folder)
    table = samples_.annotate_samples(donor.annotation, donor.ontology)
    if opts["corrected_mni"]:
        try:
            table = samples_.update_coords(table, corrected=corrected, data_dir=data_dir)
        except InputError as exc:
            raise InputError(f"{files['annotation']}: {exc}") from None
    if opts["lr_mirror"] is not None:
        table = samples_.mirror_samples(table, donor.ontology, swap=opts["lr_mirror"])
    table = samples_.drop_mismatch_samples(table)
    if table.empty:
        raise InputError(f"{files['annotation']}: no sample has coordinates consistent with its "
                         f"ontology hemisphere")
    return table


def _result_key(donor_dirs, opts, atlas_fp) -> tuple[str, dict]:
    inputs = {str(uid): {k: file_fingerprint(p) for k, p in donor_files(d).items()}
              for uid, d in donor_dirs.items()}
    key = hash_key({"version": __version__, "format": CACHE_FORMAT, "options": opts,
                    "atlas": atlas_fp, "inputs": inputs})
    return key, inputs


# --------------------------------------------------------------------------- workflow
def process_ahba(raw_dir, atlas="dk83", atlas_info=None, *, ibf_threshold=0.5,
                 probe_selection="diff_stability", donor_probes="aggregate", sim_threshold=None,
                 lr_mirror=None, missing=None, tolerance=2.0, sample_norm="srs", gene_norm="srs",
                 norm_matched=True, norm_structures=False, region_agg="donors", agg_metric="mean",
                 corrected_mni=True, reannotated=True, donors="all", cache_dir=None,
                 use_cache=True, data_dir=None) -> ProcessedAHBA:
    """Process a raw AHBA download into sample-level and regional expression tables.

    Parameters
    ----------
    raw_dir : path-like
        Folder with ``normalized_microarray_donor{uid}/`` folders (Allen layout) or
        abagen's data folder (``microarray/normalized_microarray_donor{uid}/``).
    atlas : str, path-like or nibabel image
        ``dk83`` (default), ``dk83-abagen``, ``brainnetome246`` or a NIfTI parcellation in
        MNI152 space (then ``atlas_info`` is required).
    atlas_info : path-like or pandas.DataFrame, optional
        Region table of a custom atlas (``id``, ``hemisphere``, ``structure``[, ``label``]).
    ibf_threshold : float in [0, 1]
        Intensity-based filtering: keep probes above background in at least this
        fraction of samples across donors. Default 0.5.
    probe_selection : str
        ``diff_stability`` (default), ``average``/``mean``, ``max_intensity``,
        ``max_variance``, ``pc_loading``, ``corr_variance``, ``corr_intensity``.
    donor_probes : {"aggregate", "independent", "common"}
        How probes are chosen across donors (see :func:`.probes.collapse_probes`).
    sim_threshold : float, optional
        Drop samples whose summed correlation to the donor's other samples is more than
        this many standard deviations below the mean. Default None (off).
    lr_mirror : {None, "bidirectional", "leftright", "rightleft"}
        Mirror samples across the midline. Default None.
    missing : {None, "interpolate", "centroids"}
        Estimate regions without samples. Default None (they stay NaN).
    tolerance : float
        Matching distance in mm. Default 2.
    sample_norm, gene_norm : str or None
        Normalisation of each sample across genes, and of each gene across samples
        (:data:`.normalize.NORMALIZATION_METHODS`). Default ``srs`` (scaled robust sigmoid).
    norm_matched : bool
        Normalise only samples matched to a region (default True); otherwise all samples
        are normalised and kept in the sample-level output.
    norm_structures : bool
        Normalise genes separately within each structural class. Default False (abagen's
        default; the seed paper used True).
    region_agg : {"donors", "samples", None}
        Aggregate per donor then across donors (default), pool all samples, or skip the
        aggregated table (per-donor tables are still produced).
    agg_metric : {"mean", "median"}
    corrected_mni : bool
        Use the non-linearly corrected MNI coordinates (alleninf). Default True.
    reannotated : bool
        Use the probe reannotation of Arnatkeviciute et al. 2019. Default True.
    donors : "all" or sequence
        Donors to use (uids or names).
    cache_dir : path-like, optional
        Cache folder (default ``$BRAINEXPR_CACHE`` or ``~/.cache/brainexpr``).
    use_cache : bool
        Reuse parsed matrices and finished results. Default True.
    data_dir : path-like, optional
        Reference data folder (reannotation, corrected coordinates, atlas, tissue maps).

    Returns
    -------
    ProcessedAHBA
        Sample table, (n_samples, n_genes) float32 matrix, gene table with differential
        stability, regional tables per donor and aggregated, sample counts, Methods text
        and provenance. ``provenance["cache_folder"]`` names the cached copy (when cached).

    Raises
    ------
    InputError
        For bad options or raw files (the message names the file and the problem).
    """
    started = time.perf_counter()
    opts = check_options(ibf_threshold=ibf_threshold, probe_selection=probe_selection,
                         donor_probes=donor_probes, sim_threshold=sim_threshold,
                         lr_mirror=lr_mirror, missing=missing, tolerance=tolerance,
                         sample_norm=sample_norm, gene_norm=gene_norm, norm_matched=norm_matched,
                         norm_structures=norm_structures, region_agg=region_agg,
                         agg_metric=agg_metric, corrected_mni=corrected_mni,
                         reannotated=reannotated)
    image, regions, atlas_name, atlas_fp = resolve_atlas(atlas, atlas_info, data_dir)
    donor_dirs = find_donor_dirs(raw_dir, donors)
    if opts["probe_selection"] == "diff_stability" and len(donor_dirs) < 2:
        raise InputError("probe_selection='diff_stability' needs at least two donors; choose "
                         "another probe_selection (e.g. 'max_intensity') or add donors")
    key, inputs = _result_key(donor_dirs, opts, atlas_fp)
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    result_dir = cache_root / "ahba-results" / key
    if use_cache and (result_dir / "provenance.json").is_file():
        logger.info("using the cached result %s", result_dir)
        result = load_processed(result_dir)
        result.provenance["cache_hit"] = True
        result.provenance["cache_folder"] = str(result_dir)
        return result

    timings = {}
    tic = time.perf_counter()
    raw = [load_donor(path, uid=uid, cache_dir=cache_root, use_cache=use_cache)
           for uid, path in donor_dirs.items()]
    timings["read"] = time.perf_counter() - tic
    reference = raw[0]
    for donor in raw[1:]:
        if not donor.probes.index.equals(reference.probes.index):
            raise InputError(f"{donor_files(donor.folder)['probes']} lists other probes than "
                             f"{donor_files(reference.folder)['probes']}; all donors must come "
                             f"from the same AHBA release")

    # probes ----------------------------------------------------------------
    tic = time.perf_counter()
    if opts["reannotated"]:
        probe_info = probes_.reannotate_probes(reference.probes, data_dir=data_dir)
    else:
        probe_info = probes_.original_annotation(reference.probes)
    position = pd.Series(np.arange(len(reference.probes)), index=reference.probes.index)
    corrected = samples_.load_corrected_coordinates(data_dir) if opts["corrected_mni"] else None
    tables = [_prepare_samples(d, opts, corrected, data_dir) for d in raw]
    if opts["sim_threshold"] is not None:
        rows = position.loc[probe_info.index].to_numpy()
        tables = [samples_.similarity_threshold(d.microarray[rows], t, opts["sim_threshold"])
                  for d, t in zip(raw, tables)]
    rows = position.loc[probe_info.index].to_numpy()
    kept = probes_.filter_probes([d.pacall[rows] for d in raw], probe_info,
                                 threshold=opts["ibf_threshold"],
                                 columns=[t["column"].to_numpy() for t in tables])
    if kept.empty:
        raise InputError(f"no probe passes intensity-based filtering at ibf_threshold="
                         f"{opts['ibf_threshold']}; lower the threshold")
    kept_rows = position.loc[kept.index].to_numpy()
    expression = []
    for donor, table in zip(raw, tables):
        expression.append(np.asarray(donor.microarray[kept_rows])[:, table["column"].to_numpy()])
        donor.microarray = donor.pacall = None  # unmap the raw matrices: keep memory lean
    selection = probes_.collapse_probes(expression, kept, method=opts["probe_selection"],
                                        donor_probes=opts["donor_probes"],
                                        regions=[t["structure_id"].to_numpy() for t in tables])
    del expression
    timings["probes"] = time.perf_counter() - tic

    # samples to regions ----------------------------------------------------
    tic = time.perf_counter()
    all_samples = pd.concat(tables, keys=[d.uid for d in raw], names=["donor_uid", "row"])
    labels_all = samples_.match_samples(all_samples, image, regions, tolerance=opts["tolerance"])
    splits = np.cumsum([len(t) for t in tables])[:-1]
    labels = np.split(labels_all, splits)
    timings["matching"] = time.perf_counter() - tic

    # normalisation ---------------------------------------------------------
    tic = time.perf_counter()
    values, kept_tables, kept_labels = [], [], []
    for donor, table, lab, data in zip(raw, tables, labels, selection.expression):
        if opts["norm_matched"]:
            keep = lab > 0
            table, lab, data = table.loc[keep].reset_index(drop=True), lab[keep], data[keep]
            if not keep.any():
                logger.warning("no samples of donor %d matched to the atlas", donor.uid)
        if len(table):
            data = normalize.normalize_expression(data, opts["sample_norm"], axis=1)
            groups = table["structure"].fillna("none").to_numpy() if opts["norm_structures"] \
                else None
            data = normalize.normalize_expression(data, opts["gene_norm"], axis=0, groups=groups)
        values.append(np.asarray(data, dtype=np.float32))
        kept_tables.append(table)
        kept_labels.append(lab)
    finite = np.ones(len(selection.genes), dtype=bool)
    for data in values:
        finite &= np.isfinite(data).all(axis=0)
    if not finite.all():
        logger.warning("dropping %d genes that could not be normalised (constant within a donor "
                       "or structure)", int((~finite).sum()))
        values = [v[:, finite] for v in values]
    genes = selection.genes.loc[finite].copy()
    if genes.empty:
        raise InputError("no gene survived normalisation; check the raw data")
    timings["normalisation"] = time.perf_counter() - tic

    # regions ---------------------------------------------------------------
    tic = time.perf_counter()
    all_ids = regions["id"].to_numpy()
    voxels = agg.atlas_voxels(image) if opts["missing"] is not None else None
    extra = [(np.empty((0, len(genes))), np.empty(0, int)) for _ in raw]
    n_filled = 0
    if opts["missing"] == "interpolate":
        extra = [agg.interpolate_missing(v, t, lab, image, regions, voxels=voxels)
                 for v, t, lab in zip(values, kept_tables, kept_labels)]
        n_filled = sum(len(e[1]) for e in extra)
    elif opts["missing"] == "centroids":
        est, filled = agg.match_centroids(values, kept_tables, kept_labels, image, regions,
                                          voxels=voxels)
        extra = [(est, filled) for _ in raw]
        n_filled = len(filled)
    donor_tables = {}
    for donor, v, lab, (ev, el) in zip(raw, values, kept_labels, extra):
        stacked = np.vstack([v.astype(np.float64), ev]) if len(el) else v
        donor_tables[donor.uid] = agg.groupby_label(stacked, np.r_[lab, el], all_ids,
                                                    opts["agg_metric"])
    if opts["region_agg"] == "donors":
        regional = agg.aggregate_donors(list(donor_tables.values()), opts["agg_metric"])
    elif opts["region_agg"] == "samples":
        pooled = np.vstack([np.vstack([v.astype(np.float64), ev])
                            for v, (ev, _) in zip(values, extra)])
        pooled_labels = np.concatenate([np.r_[lab, el] for lab, (_, el) in zip(kept_labels, extra)])
        regional = agg.groupby_label(pooled, pooled_labels, all_ids, opts["agg_metric"])
    else:
        regional = None
    genes["diff_stability"] = agg.gene_diff_stability(list(donor_tables.values())) \
        if len(raw) > 1 else np.nan
    timings["regions"] = time.perf_counter() - tic

    # outputs ---------------------------------------------------------------
    tic = time.perf_counter()
    from ..atlas import tissue_class_at

    key_of = _label_to_key(regions)
    frames = []
    for donor, table, lab in zip(raw, kept_tables, kept_labels):
        frame = pd.DataFrame({
            "well_id": table["well_id"].to_numpy(), "donor": donor.name, "donor_uid": donor.uid,
            "mirrored": table["mirrored"].to_numpy(bool),
            "structure_id": table["structure_id"].to_numpy(),
            "structure_acronym": table["structure_acronym"].to_numpy(),
            "structure_name": table["structure_name"].to_numpy(),
            "hemisphere": table["hemisphere"].to_numpy(),
            "structure": table["structure"].fillna("none").to_numpy(),
            "mni_x": table["mni_x"].to_numpy(float), "mni_y": table["mni_y"].to_numpy(float),
            "mni_z": table["mni_z"].to_numpy(float),
            "label": lab.astype(int),
            "region": [key_of.get(int(i), "") for i in lab],
        })
        frames.append(frame)
    sample_table = pd.concat(frames, ignore_index=True)
    sample_table.index.name = "sample_id"
    sample_table["tissue_class"] = tissue_class_at(
        sample_table[["mni_x", "mni_y", "mni_z"]].to_numpy(), data_dir=data_dir).astype(int)
    gene_index = pd.Index(genes.index, name="gene")
    region_index = pd.Index(regions.index, name="region")
    regional_df = None if regional is None else pd.DataFrame(regional, index=region_index,
                                                             columns=gene_index)
    donor_dfs = {uid: pd.DataFrame(t, index=region_index, columns=gene_index)
                 for uid, t in donor_tables.items()}
    counts = pd.DataFrame({str(d.uid): [int((lab == i).sum()) for i in all_ids]
                           for d, lab in zip(raw, kept_labels)}, index=region_index)
    n_matched = int(sum((lab > 0).sum() for lab in labels))
    n_total = int(sum(len(lab) for lab in labels))
    methods = methods_report(opts, [d.uid for d in raw], n_probes=len(kept), n_genes=len(genes),
                             n_regions=len(regions), atlas_name=atlas_name,
                             n_interpolated=n_filled or None,
                             counts={"matched": n_matched, "total": n_total}, data_dir=data_dir)
    timings["outputs"] = time.perf_counter() - tic
    provenance = {
        "brainexpr_version": __version__,
        "options": opts,
        "atlas": {"name": atlas if isinstance(atlas, str) else "custom", "description": atlas_name,
                  "n_regions": int(len(regions)), "fingerprint": atlas_fp},
        "raw_dir": str(Path(raw_dir).expanduser().resolve()),
        "donors": [d.uid for d in raw],
        "inputs": inputs,
        "counts": {
            "probes_total": int(len(reference.probes)),
            "probes_annotated": int(len(probe_info)),
            "probes_after_ibf": int(len(kept)),
            "genes": int(len(genes)),
            "samples_raw": {str(d.uid): int(len(d.annotation)) for d in raw},
            "samples_after_qc": {str(d.uid): int(len(t)) for d, t in zip(raw, tables)},
            "samples_matched": {str(d.uid): int((lab > 0).sum()) for d, lab in zip(raw, labels)},
            "samples_output": {str(d.uid): int(len(t)) for d, t in zip(raw, kept_tables)},
            "regions_filled": int(n_filled),
        },
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "cache_hit": False,
    }
    result = ProcessedAHBA(samples=sample_table, expression=np.vstack(values), genes=genes,
                           regional=regional_df, regional_donors=donor_dfs, counts=counts,
                           methods=methods, provenance=provenance)
    provenance["timings_s"]["total"] = round(time.perf_counter() - started, 3)
    if use_cache:
        _store(result, result_dir)
    logger.info("AHBA pipeline: %d samples x %d genes, %d regions in %.1f s", len(sample_table),
                len(genes), len(regions), time.perf_counter() - started)
    return result


def _store(result: ProcessedAHBA, folder: Path) -> None:
    """Write a result into the cache atomically (a crash leaves no partial entry)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        result.provenance["cache_folder"] = str(folder)
        write_processed(result, stage, binary_tables=True)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(stage, folder)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
