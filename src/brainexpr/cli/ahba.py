"""``brainexpr ahba``: process a raw Allen download into sample and regional tables."""

from __future__ import annotations

import argparse

from ..workflows.ahba import process_ahba_download
from . import add_overwrite_argument

HELP = ("process the raw AHBA microarray download (normalized_microarray_donor*/) into a sample "
        "table, a sample x gene matrix, regional tables and a Methods paragraph")


def _optional(cast):
    def parse(text):
        return None if str(text).lower() in ("none", "null", "") else cast(text)
    return parse


def add_arguments(parser):
    from ..ahba.pipeline import CHOICES, DEFAULTS

    def choice(name):
        return list(CHOICES[name])

    parser.add_argument("raw_dir", metavar="RAW_DIR",
                        help="folder with normalized_microarray_donor{uid}/ folders (or abagen's "
                             "data folder with microarray/)")
    parser.add_argument("--out", dest="out_dir", required=True, help="output folder")
    add_overwrite_argument(parser)
    parser.add_argument("--atlas", default="dk83",
                        help="dk83 (default), dk83-abagen, brainnetome246 or a NIfTI file in MNI152")
    parser.add_argument("--atlas-info", default=None,
                        help="CSV with id, hemisphere, structure (required for a NIfTI --atlas)")
    parser.add_argument("--donors", nargs="+", default=["all"],
                        help="donor uids or names (default: all)")
    g = parser.add_argument_group("abagen options (defaults as in abagen)")
    g.add_argument("--ibf-threshold", type=float, default=DEFAULTS["ibf_threshold"],
                   help="keep probes above background in at least this fraction of samples")
    g.add_argument("--probe-selection", default=DEFAULTS["probe_selection"],
                   choices=choice("probe_selection"))
    g.add_argument("--donor-probes", default=DEFAULTS["donor_probes"], choices=choice("donor_probes"))
    g.add_argument("--sim-threshold", type=_optional(float), default=None,
                   help="drop samples less similar than this many SD below the mean (default off)")
    g.add_argument("--lr-mirror", type=_optional(str), default=None, choices=choice("lr_mirror"),
                   help="mirror samples across the midline (default: none)")
    g.add_argument("--missing", type=_optional(str), default=None, choices=choice("missing"),
                   help="estimate regions without samples (default: leave empty)")
    g.add_argument("--tolerance", type=float, default=DEFAULTS["tolerance"],
                   help="sample-to-region matching distance in mm (default 2)")
    g.add_argument("--sample-norm", type=_optional(str), default=DEFAULTS["sample_norm"],
                   choices=choice("sample_norm"))
    g.add_argument("--gene-norm", type=_optional(str), default=DEFAULTS["gene_norm"],
                   choices=choice("gene_norm"))
    g.add_argument("--norm-matched", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS["norm_matched"],
                   help="normalise only samples matched to a region (default yes)")
    g.add_argument("--norm-structures", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS["norm_structures"],
                   help="normalise genes within structural classes (default no)")
    g.add_argument("--region-agg", type=_optional(str), default=DEFAULTS["region_agg"],
                   choices=choice("region_agg"))
    g.add_argument("--agg-metric", default=DEFAULTS["agg_metric"], choices=choice("agg_metric"))
    g.add_argument("--corrected-mni", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS["corrected_mni"],
                   help="use the non-linearly corrected MNI coordinates (default yes)")
    g.add_argument("--reannotated", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS["reannotated"],
                   help="use the probe reannotation of Arnatkeviciute et al. 2019 (default yes)")
    c = parser.add_argument_group("cache")
    c.add_argument("--cache-dir", default=None,
                   help="cache folder (default $BRAINEXPR_CACHE or ~/.cache/brainexpr)")
    c.add_argument("--no-cache", dest="use_cache", action="store_false",
                   help="parse everything again and store nothing")


def run(args) -> int:
    donors = "all" if args.donors == ["all"] else args.donors
    summary = process_ahba_download(
        args.raw_dir, args.out_dir, atlas=args.atlas, atlas_info=args.atlas_info,
        ibf_threshold=args.ibf_threshold, probe_selection=args.probe_selection,
        donor_probes=args.donor_probes, sim_threshold=args.sim_threshold,
        lr_mirror=args.lr_mirror, missing=args.missing, tolerance=args.tolerance,
        sample_norm=args.sample_norm, gene_norm=args.gene_norm, norm_matched=args.norm_matched,
        norm_structures=args.norm_structures, region_agg=args.region_agg,
        agg_metric=args.agg_metric, corrected_mni=args.corrected_mni,
        reannotated=args.reannotated, donors=donors, cache_dir=args.cache_dir,
        use_cache=args.use_cache, overwrite=args.overwrite, data_dir=args.data_dir)
    regions = f", {summary['n_regions']} regions" if summary["n_regions"] is not None else ""
    print(f"{summary['out_dir']}: {summary['n_samples']} samples x {summary['n_genes']} genes"
          f"{regions} from donors {', '.join(map(str, summary['donors']))} "
          f"({'cached, ' if summary['cache_hit'] else ''}{summary['seconds']} s)")
    return 0
