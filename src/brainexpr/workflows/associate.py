"""Workflow ``associate``: regional gene maps versus a regional disease map, with spatial nulls.

The seed paper's section 4.6 (Fig. 6), done with the statistics a reviewer asks for:
per-gene correlation with the target (e.g. ADNI AD tau) with parametric *and* spatial-null
p-values and FDR across genes; the agreement of two sources of gene maps (abagen-style vs
INR) with the most discordant genes; the gradient of the correlations along the gene axis
(with a gene-shuffle and a spatial-null p-value); and the correlation with the Open Targets
AD score. Everything is configured by the keyword arguments of :func:`associate`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.association import (REGION_SETS, align_regions, axis_gradient,
                                    centroid_distances, compare_sources, correlate_with_target,
                                    open_targets_association, parcel_centroids,
                                    restrict_to_covered_hemisphere, select_regions,
                                    to_region_keys)
from ..analysis.nulls import NULL_INPUTS, NULL_METHODS, generate_surrogates
from ..datasets import (load_atlas, load_gene_set, load_open_targets, load_pathology_map,
                        load_region_distances, load_regional_expression)
from ..datasets.loaders import PATHOLOGY_GROUPS, PATHOLOGY_MEASURES
from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError
from ..outputs import check_output_folder, output_folder
from ..reporting.association import association_markdown
from ..utils import atomic_write, jsonable

logger = logging.getLogger(__name__)

__all__ = ["DISTANCE_SOURCES", "PAPER", "AssociationResult", "associate"]

#: Where the inter-region distances of the spatial null come from.
DISTANCE_SOURCES = {
    "auto": "the ADNI 86-region Euclidean distance table where it covers the regions, "
            "otherwise distances between the centroids of the DK-83 atlas parcels",
    "adni86": "Euclidean_dist_mat.csv of the ADNI pipeline (72 regions: cortex, "
              "hippocampus, amygdala)",
    "dk83-centroids": "Euclidean distances between the centroids of the parcels of the "
                      "DK-83 atlas (1 mm MNI152)",
}

#: Gene-set names accepted by ``genes``.
GENE_SETS = ("ad", "ad114", "l1000", "all")

#: Gene set of the built-in regional table when ``genes`` is not given.
DEFAULT_GENE_SET = "ad"

#: Fewest genes with an Open Targets score for the Open Targets step to run.
MIN_SCORED_GENES = 4

#: The seed paper's numbers (section 4.6, Fig. 6), reported next to ours.
PAPER = {
    "agreement_r": 0.89, "agreement_p": 2.00e-35,
    "open_targets": {"abagen": {"r": 0.12, "p": 0.330}, "inr": {"r": 0.14, "p": 0.222}},
    "discordant": {"stronger_in_inr": ["NEAT1", "JAZF1", "HSPH1"],
                   "stronger_in_abagen": ["TMEM41A", "PTK2B", "ZNF184"]},
    "gradient": "genes ordered by the spectral axis run from negative to positive tau "
                "correlation (no statistic reported)",
}

OUTPUT_MARKER = "association_summary.json"

#: Largest gene count for which the default spectral gene axis is computed.
MAX_AXIS_GENES = 2000

#: Fewest maps for a gene axis (and its gradient test, which needs 4 genes).
MIN_AXIS_GENES = 4


@dataclass
class AssociationResult:
    """What :func:`associate` computed.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per gene (the per-gene CSV): axis position and rank, Open Targets score, and
        per source ``{source}_pearson_r``, ``_p``, ``_p_spatial``, ``_q``, ``_q_spatial`` and
        the same for Spearman; with two sources ``abs_difference`` and ``discordant``.
    summary : dict
        Every summary number, the options used and the paper's numbers.
    files : list of Path
        Files written (empty without ``out_dir``).
    """

    table: pd.DataFrame
    summary: dict
    files: list = field(default_factory=list)


# --------------------------------------------------------------------------- inputs
def _resolve_genes(genes, data_dir):
    """None (the default set for the built-in table, all columns of a user table), "all",
    or a list of symbols."""
    if genes is None or (isinstance(genes, str) and genes == "all"):
        return genes
    if isinstance(genes, str):
        if genes in GENE_SETS:
            return load_gene_set(genes, data_dir=data_dir)
        if os.path.isfile(genes):
            from ..datasets.validate import read_name_list

            return read_name_list(genes, "gene list")
        if "," in genes:
            return [g.strip() for g in genes.split(",") if g.strip()]
        raise InputError(
            f"genes must be a gene-set name ({', '.join(GENE_SETS)}), a file with one symbol "
            f"per line, or comma-separated symbols; got {genes!r}"
        )
    return list(dict.fromkeys(map(str, genes)))


def _read_table(path, what: str, sheet=None) -> pd.DataFrame:
    from ..datasets.loaders import read_region_table

    return read_region_table(path, what, sheet=sheet)


def _load_source(source, genes, name: str, data_dir,
                 hemisphere=None) -> tuple[pd.DataFrame, str]:
    """Return a (regions, genes) table indexed by region keys and a description.

    ``genes=None`` means the default gene set for the built-in table and every column of
    a user table (which may hold maps that are not genes).
    """
    if source is None:
        genes = load_gene_set(DEFAULT_GENE_SET, data_dir=data_dir) if genes is None else genes
        table = load_regional_expression(None if genes == "all" else genes, data_dir=data_dir,
                                         allow_missing=True)
        return table, "AHBA regional table (abagen, DK-83, 6 donors)"
    if isinstance(source, pd.DataFrame):
        table, description = source, "table given in Python"
    else:
        table, description = _read_table(source, f"{name} gene table"), str(source)
    table = to_region_keys(table, f"{name} gene table", hemisphere=hemisphere)
    if genes == "all":
        genes = None
    labels = [c for c in table.columns if pd.to_numeric(table[c], errors="coerce").isna().all()]
    if labels:  # e.g. the 'Region' name column of abagen's regional CSV
        logger.info("%s gene table: ignoring columns without numbers: %s", name,
                    ", ".join(map(str, labels[:5])))
        table = table.drop(columns=labels)
    table.columns = [str(c) for c in table.columns]
    if table.columns.duplicated().any():
        duplicated = table.columns[table.columns.duplicated()].unique()
        raise InputError(f"{name} gene table has duplicated genes: "
                         f"{', '.join(duplicated[:10])}")
    if genes is not None:
        present = [g for g in genes if g in table.columns]
        absent = [g for g in genes if g not in table.columns]
        from ..datasets.validate import describe_unknown

        if not present:
            raise InputError(describe_unknown(absent, table.columns, f"the {name} gene table")
                             + "; none of the requested genes is there")
        if absent:
            logger.warning(describe_unknown(absent, table.columns, f"the {name} gene table"))
        table = table[present]
    return table, description


def _load_target(target, group, target_column, data_dir, hemisphere=None,
                 sheet=None) -> tuple[pd.Series, str, str]:
    """Return the target map by region key, a short name and a description."""
    if isinstance(target, pd.Series):
        return (to_region_keys(target, "target map", hemisphere=hemisphere),
                str(target.name or "target"), "Series")
    if target in PATHOLOGY_MEASURES:
        check_choice(group, PATHOLOGY_GROUPS, "group")
        series = load_pathology_map(target, group, data_dir=data_dir)
        names = {"tau": "tau (AV1451)", "abeta": "amyloid (AV45)", "met": "FDG",
                 "atrophy": "atrophy"}
        return series, f"{group.upper()} {names[target]}", f"ADNI group map {group}_{target}"
    if isinstance(target, (str, os.PathLike)) and (Path(target).suffix or os.path.isfile(target)):
        table = _read_table(target, "target map", sheet=sheet)
        if target_column is None:
            if table.shape[1] != 1:
                raise InputError(
                    f"target map {target} has {table.shape[1]} value columns "
                    f"({', '.join(map(str, table.columns[:8]))}); choose one with "
                    "target_column (--target-column)"
                )
            target_column = table.columns[0]
        if target_column not in table.columns:
            raise InputError(f"target_column {target_column!r} is not a column of {target}; "
                             f"columns: {', '.join(map(str, table.columns[:8]))}")
        series = to_region_keys(table[target_column], "target map", hemisphere=hemisphere)
        return series, str(target_column), f"{target} (column {target_column})"
    check_choice(target, PATHOLOGY_MEASURES, "target", or_else="a CSV file of region -> value")


def _resolve_distances(distances, keys, data_dir) -> tuple[pd.DataFrame, str]:
    if isinstance(distances, pd.DataFrame):
        table, description = to_region_keys(distances, "distance table"), "table given in Python"
        table.columns = to_region_keys(table.T, "distance table columns").index
    elif distances in DISTANCE_SOURCES:
        table = None
        if distances in ("auto", "adni86"):
            adni = load_region_distances(data_dir=data_dir)
            if all(k in adni.index for k in keys):
                table, description = adni, "adni86"
            elif distances == "adni86":
                missing = [k for k in keys if k not in adni.index]
                raise InputError(
                    f"the ADNI distance table lacks regions {', '.join(missing[:10])}; use "
                    "distances='dk83-centroids'"
                )
        if table is None:
            atlas = load_atlas("dk83", data_dir=data_dir)
            table = centroid_distances(parcel_centroids(atlas.image, atlas.regions))
            description = "dk83-centroids"
    elif isinstance(distances, (str, os.PathLike)):
        table = to_region_keys(_read_table(distances, "distance table"), "distance table")
        table.columns = to_region_keys(table.T, "distance table columns").index
        description = str(distances)
    else:
        check_choice(distances, DISTANCE_SOURCES, "distances",
                     or_else="a CSV file of an (n, n) distance matrix")
    missing = [k for k in keys if k not in table.index or k not in table.columns]
    if missing:
        raise InputError(f"the distance table ({description}) lacks regions: "
                         f"{', '.join(missing[:12])}")
    return table.loc[keys, keys].astype(float), description


def _pooled_table(tables: dict) -> pd.DataFrame:
    """The mean of the sources' per-gene z-scored tables over their shared regions.

    Symmetric in the sources, so the gene axis computed from it (and the sign of every
    gradient along it) does not depend on which source is given first.
    """
    frames = list(tables.values())
    regions = [r for r in frames[0].index if all(r in f.index for f in frames[1:])]
    standardised = [(f.loc[regions] - f.loc[regions].mean()) / f.loc[regions].std()
                    for f in frames]
    return sum(standardised) / len(standardised)


def _resolve_axis(gene_axis, tables: dict) -> tuple[pd.Series | None, str]:
    if isinstance(gene_axis, str) and gene_axis == "none":
        return None, "none"
    if isinstance(gene_axis, pd.Series):
        return gene_axis.astype(float), "Series given in Python"
    if gene_axis is None:
        from ..geneaxis import spectral_gene_axis

        reference = _pooled_table(tables)
        if reference.shape[1] > MAX_AXIS_GENES:
            logger.warning("%d genes: too many for a default spectral gene axis (at most %d); "
                           "no gene-axis analysis (give gene_axis= to add one)",
                           reference.shape[1], MAX_AXIS_GENES)
            return None, f"none (more than {MAX_AXIS_GENES} genes)"
        usable = reference.loc[:, reference.std(axis=0) > 0].dropna(axis=1)
        if usable.shape[1] < MIN_AXIS_GENES:
            logger.warning("%d maps: too few for a gene axis (at least %d); no gene-axis "
                           "analysis", usable.shape[1], MIN_AXIS_GENES)
            return None, f"none (fewer than {MIN_AXIS_GENES} maps)"
        axis = spectral_gene_axis(usable, keep_reference=False)
        pooled = "" if len(tables) == 1 else (
            f"the mean of the {len(tables)} sources' per-gene z-scored tables (symmetric in "
            "the sources) ")
        return axis.positions, (f"spectral gene axis (shifted-correlation affinity) of "
                                f"{pooled or 'the first source '}over {len(reference)} regions; "
                                "sign: the gene of largest |loading| at the positive end")
    table = _read_table(gene_axis, "gene axis")
    column = "position" if "position" in table.columns else table.select_dtypes("number").columns[0]
    positions = table[column].astype(float)
    positions.index = positions.index.astype(str)
    return positions, f"{gene_axis} (column {column})"


# --------------------------------------------------------------------------- workflow
@fill_doc
def associate(out_dir=None, *, genes=None, expression=None, expression_name: str = "abagen",
              compare=None, compare_name: str = "inr", target="tau", group: str = "ad",
              target_column: str | None = None, sheet=None, region_set="cortex",
              hemisphere: str = "both",
              drop_missing: bool = False, null_method: str | None = "variogram",
              n_surrogates: int = 1000, distances="auto", gene_axis=None,
              n_discordant: int = 6, min_abs_r: float = 0.0,
              open_targets_step: bool = True, open_targets_absolute: bool = True,
              open_targets_missing: str = "drop",
              n_permutations: int = 10000, random_state: int | None = 0,
              figures: bool = True, figure_format: str = "png",
              overwrite: bool = False, data_dir=None) -> AssociationResult:
    """Associate regional gene maps with a regional disease map, with spatial nulls.

    Parameters
    ----------
    out_dir : path-like, optional
        Output folder (written only when complete; an existing folder is replaced only
        if it holds a previous ``associate`` output). Nothing is written when omitted.
    genes : str or sequence of str, optional
        Gene set (``"ad"``: the reference AD genes, ``"ad114"``, ``"l1000"``, ``"all"``), a
        file with one symbol per line, comma-separated symbols, or a list. Default: the
        ``"ad"`` set of the built-in table, or every column of a user ``expression`` table
        (whose columns may be maps that are not genes).
    expression : path-like or pandas.DataFrame, optional
        First source: regions x genes, region names of any scheme in the first column.
        Default: the AHBA regional table (abagen, DK-83).
    expression_name : str
        Name of the first source in outputs.
    compare : path-like or pandas.DataFrame, optional
        Second source (e.g. INR maps parcellated onto DK regions), same layout.
    compare_name : str
    target : {"tau", "abeta", "met", "atrophy"}, path-like or pandas.Series
        ADNI group map (with ``group``) or a CSV of region -> value.
    group : {"nc", "emci", "lmci", "ad"}
        ADNI group of a pathology target.
    target_column : str, optional
        Column of a target CSV with several columns.
    sheet : str or int, optional
        Sheet of an Excel (``.xlsx``) target (default: the first).
    region_set : {"cortex", "subcortex", "cortex+subcortex", "all"} or sequence of str
        Regions analysed (default cortex: AV1451 binds off-target in pallidum/putamen);
        explicit region names (a list, or a comma-separated string) are accepted.
    hemisphere : {"both", "left", "right"}
        Hemispheres analysed; also the hemisphere(s) that region names without one
        (``"precuneus"``) describe. A target map that covers one hemisphere only is analysed
        on that hemisphere (with a warning), as in ``vae``.
    drop_missing : bool
        Drop regions of the set that an input lacks, or that have no value (NaN), instead
        of raising an error; with two sources, the regions both have are analysed.
    null_method : {"variogram", "moran", "spin", "permutation"} or None
        Surrogate target maps for the spatial null (None or ``"none"``: parametric only).
        ``spin`` rotates the fsaverage5 sphere (cortical regions only).
    n_surrogates : int
    distances : {"auto", "adni86", "dk83-centroids"}, path-like or pandas.DataFrame
        Inter-region distances for the null (see :data:`DISTANCE_SOURCES`).
    gene_axis : path-like, pandas.Series or "none", optional
        Position of each gene on the gene axis (CSV gene -> ``position``). Default: the
        spectral gene axis (:func:`brainexpr.geneaxis.spectral_gene_axis`) of the source
        over all its regions; with two sources, of the mean of their per-gene z-scored
        tables over their shared regions, so that the axis, and the sign of each source's
        gradient along it, do not depend on the order of the sources. Sign convention:
        the gene with the largest absolute loading lies at the positive end (position 1).
    n_discordant : int
        Number of most discordant genes between the two sources to report.
    min_abs_r : float
        Genes weaker than this in both sources are not called discordant.
    open_targets_step : bool
        Correlate the gene-target correlations with the Open Targets AD score; skipped
        anyway (with a warning) when fewer than 4 columns are scored genes.
    open_targets_absolute : bool
        Correlate ``|r|`` (default) or the signed r with the Open Targets score.
    open_targets_missing : {"drop", "zero"}
        Genes without an Open Targets score are dropped or scored 0.
    n_permutations : int
        Gene-label shuffles of the gene-axis gradient test.
    random_state : int or None
        Seed of surrogates and permutations.
    %(figures)s
    figure_format : {"png", "pdf", "svg"}
    %(overwrite)s
    %(data_dir)s

    Returns
    -------
    AssociationResult
    """
    if null_method is not None:
        check_choice(null_method, (*NULL_METHODS, "none"), "null_method")
    if null_method == "none":
        null_method = None
    check_choice(figure_format, ("png", "pdf", "svg"), "figure_format")
    check_choice(open_targets_missing, ("drop", "zero"), "open_targets_missing")
    if compare is not None and compare_name == expression_name:
        raise InputError(f"expression_name and compare_name are both {compare_name!r}; give "
                         "the two sources different names")
    if isinstance(region_set, str) and region_set not in REGION_SETS and "," in region_set:
        region_set = [r.strip() for r in region_set.split(",") if r.strip()]
    if out_dir is not None:
        check_output_folder(out_dir, "associate", overwrite)

    gene_list = _resolve_genes(genes, data_dir)
    target_map, target_name, target_description = _load_target(
        target, group, target_column, data_dir, hemisphere=hemisphere, sheet=sheet)
    keys = restrict_to_covered_hemisphere(select_regions(region_set, hemisphere),
                                          target_map.index)
    sources, descriptions, full_tables = {}, {}, {}
    inputs = [(expression_name, expression)]
    if compare is not None:
        inputs.append((compare_name, compare))
    for name, source in inputs:
        table, descriptions[name] = _load_source(source, gene_list, name, data_dir,
                                                 hemisphere=hemisphere)
        full_tables[name] = table
    if compare is not None:
        shared = [g for g in full_tables[expression_name].columns
                  if g in set(full_tables[compare_name].columns)]
        dropped = len(full_tables[expression_name].columns) - len(shared)
        if not shared:
            raise InputError(f"the {expression_name} and {compare_name} gene tables share no "
                             "gene symbols")
        if dropped or len(shared) < full_tables[compare_name].shape[1]:
            logger.warning("comparing the %d genes present in both sources", len(shared))
        full_tables = {name: t[shared] for name, t in full_tables.items()}
    # every source is aligned with the target on its own, then all on their shared regions
    aligned = {}
    for name, table in full_tables.items():
        aligned[name] = align_regions(table, target_map, keys, drop_missing=drop_missing,
                                      names=(f"{name} gene table", "target map"))
    regions = [k for k in keys if all(k in genes_.index for genes_, _ in aligned.values())]
    if len(regions) < 5:
        raise InputError(f"the sources and the target share only {len(regions)} regions; at "
                         "least 5 are needed")
    if any(len(genes_) != len(regions) for genes_, _ in aligned.values()):
        logger.warning("the sources cover different regions: %d shared regions analysed",
                       len(regions))
    sources = {name: genes_.loc[regions] for name, (genes_, _) in aligned.items()}
    target_values = aligned[expression_name][1].loc[regions]
    logger.info("%d regions (%s, %s hemisphere(s)), %d genes, target %s", len(regions),
                region_set if isinstance(region_set, str) else "explicit list", hemisphere,
                sources[expression_name].shape[1], target_description)

    # one set of surrogate target maps, shared by both sources
    surrogates, distance_description = None, None
    if null_method is not None:
        distance_table, options = None, {}
        if "distances" in NULL_INPUTS[null_method]:
            distance_table, distance_description = _resolve_distances(distances, regions,
                                                                      data_dir)
        if "regions" in NULL_INPUTS[null_method]:
            options = {"regions": regions, "data_dir": data_dir}
            distance_description = "fsaverage5 sphere (DK-68 parcel centroids)"
        surrogates = generate_surrogates(
            target_values.to_numpy(), None if distance_table is None else distance_table.to_numpy(),
            n_surrogates, method=null_method, random_state=random_state, **options)

    results, nulls = {}, {}
    for name, table in sources.items():
        results[name], null = correlate_with_target(
            table, target_values, null_method=null_method, surrogates=surrogates,
            return_null=True)
        nulls[name] = null.get("pearson")

    axis_positions, axis_description = _resolve_axis(gene_axis, full_tables)
    open_targets = load_open_targets(data_dir=data_dir) if open_targets_step else None
    if open_targets is not None:
        scored = int(open_targets.index.isin(sources[expression_name].columns).sum())
        if scored < MIN_SCORED_GENES:
            logger.warning("%d of the %d maps are genes with an Open Targets score; the Open "
                           "Targets step is skipped (maps that are not genes?)", scored,
                           sources[expression_name].shape[1])
            open_targets = None

    summary = {
        "target": {"name": target_name, "source": target_description},
        "regions": {"set": region_set if isinstance(region_set, str) else "explicit",
                    "hemisphere": hemisphere, "n": len(regions), "keys": regions},
        "null": {"method": null_method, "n_surrogates": 0 if surrogates is None else
                 int(surrogates.shape[0]), "distances": distance_description,
                 "random_state": random_state},
        "gene_axis": axis_description,
        "sources": {},
        "paper": PAPER,
    }
    table = pd.DataFrame(index=pd.Index(sources[expression_name].columns, name="gene"))
    if axis_positions is not None:
        table["axis_position"] = axis_positions.reindex(table.index)
        table["axis_rank"] = table["axis_position"].rank(method="first").astype("Int64")
    if open_targets is not None:
        table["open_targets_score"] = open_targets.reindex(table.index)
    for name, result in results.items():
        table = table.join(result.add_prefix(f"{name}_"))
        source_summary = {
            "table": descriptions[name], "n_genes": int(result.shape[0]),
            "pearson_p<0.05": int((result["pearson_p"] < 0.05).sum()),
            "pearson_q<0.05": int((result["pearson_q"] < 0.05).sum()),
            "strongest": _strongest(result),
        }
        if null_method is not None:
            for column in ("pearson_p_spatial", "pearson_q_spatial"):
                source_summary[f"{column}<0.05"] = int((result[column] < 0.05).sum())
            source_summary["significant_spatial_fdr"] = list(
                result.index[result["pearson_q_spatial"] < 0.05])
        if axis_positions is not None:
            source_summary["axis_gradient"] = axis_gradient(
                result["pearson_r"], axis_positions, method="spearman",
                n_permutations=n_permutations, null_correlations=nulls[name],
                random_state=random_state).to_dict()
        if open_targets is not None:
            # both |r| and signed r are reported; open_targets_absolute picks the one plotted
            source_summary["open_targets"] = open_targets_association(
                result["pearson_r"], open_targets, absolute=open_targets_absolute,
                missing=open_targets_missing)
            source_summary["open_targets_other"] = open_targets_association(
                result["pearson_r"], open_targets, absolute=not open_targets_absolute,
                missing=open_targets_missing)
        summary["sources"][name] = source_summary

    agreement = None
    if compare is not None:
        agreement = compare_sources(results[expression_name]["pearson_r"],
                                    results[compare_name]["pearson_r"],
                                    n_discordant=n_discordant, min_abs_r=min_abs_r,
                                    names=(expression_name, compare_name))
        table["abs_difference"] = agreement.table["abs_difference"].reindex(table.index)
        table["discordant"] = table.index.isin(agreement.discordant)
        summary["agreement"] = agreement.to_dict()
    if axis_positions is not None:
        table = table.sort_values("axis_position", kind="stable")

    files = []
    if out_dir is not None:
        with output_folder(out_dir, "associate", overwrite) as stage:
            with atomic_write(stage / "associations.csv", newline="") as handle:
                table.to_csv(handle, float_format="%.6g")
            with atomic_write(stage / "target_map.csv", newline="") as handle:
                target_values.rename(target_name).to_frame().to_csv(handle, float_format="%.6g")
            with atomic_write(stage / OUTPUT_MARKER) as handle:
                json.dump(jsonable(summary), handle, indent=1)
            with atomic_write(stage / "association_summary.md") as handle:
                handle.write(association_markdown(summary, expression_name,
                                                  compare_name if compare is not None else None))
            if figures:
                _write_figures(stage, table, results, agreement, open_targets, summary,
                               target_values, target_name, figure_format, data_dir)
            names = sorted(p.name for p in stage.iterdir())
        files = [Path(out_dir) / n for n in names]
        logger.info("wrote %d files to %s", len(files), out_dir)
    return AssociationResult(table=table, summary=jsonable(summary), files=files)


def _strongest(result: pd.DataFrame, n: int = 5) -> dict:
    order = result["pearson_r"].dropna().sort_values()
    return {"negative": {g: round(float(v), 3) for g, v in order.head(n).items()},
            "positive": {g: round(float(v), 3) for g, v in order.tail(n)[::-1].items()}}


def _write_figures(stage, table, results, agreement, open_targets, summary, target_values,
                   target_name, figure_format, data_dir) -> None:
    from ..datasets import load_template
    from ..reporting import association as figures
    from ..reporting.figures import pyplot, save_figure

    plt = pyplot()
    names = list(results)
    correlations = pd.DataFrame({n: results[n]["pearson_r"] for n in names})
    significant = None
    if summary["null"]["method"] is not None:
        significant = pd.DataFrame({n: results[n]["pearson_q_spatial"] < 0.05 for n in names})
    if "axis_position" in table.columns:
        order = list(table["axis_position"].dropna().sort_values(kind="stable").index)
    else:
        order = list(correlations[names[0]].sort_values().index)
    ax = figures.plot_axis_bars(correlations, order, significant, target_name=target_name)
    titles = []
    for name in names:
        gradient = summary["sources"][name].get("axis_gradient")
        if gradient:
            spatial = (f", spatial-null p = {gradient['p_spatial']:.3f}"
                       if gradient["p_spatial"] is not None else "")
            titles.append(f"{name}: Spearman r(axis position, r) = {gradient['r']:.2f}, "
                          f"gene-shuffle p = {gradient['p_permutation']:.4f}{spatial}")
    if titles:
        ax.set_title("\n".join(titles), fontsize=9)
    save_figure(ax.figure, stage / "fig_axis_bars", formats=(figure_format,))
    if agreement is not None:
        ax = figures.plot_source_agreement(agreement, target_name=target_name)
        save_figure(ax.figure, stage / "fig_sources_scatter", formats=(figure_format,))
    if open_targets is not None:
        fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.2), squeeze=False)
        for k, name in enumerate(names):
            figures.plot_open_targets(results[name]["pearson_r"], open_targets,
                                      summary["sources"][name]["open_targets"], source=name,
                                      target_name=target_name,
                                      colour=figures.SOURCE_COLOURS[k % 2], ax=axes[0, k])
        fig.tight_layout()
        save_figure(fig, stage / "fig_open_targets", formats=(figure_format,))
    atlas = load_atlas("dk83", data_dir=data_dir)
    fig = figures.plot_target_map(target_values, atlas.image, atlas.regions,
                                  template=load_template(data_dir=data_dir),
                                  title=f"{target_name}, {len(target_values)} regions")
    save_figure(fig, stage / "fig_target_map", formats=(figure_format,))
