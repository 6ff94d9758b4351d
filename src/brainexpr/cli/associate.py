"""``brainexpr associate``: gene maps vs a regional disease map, with spatial nulls."""

from __future__ import annotations

import argparse

from ..analysis.association import HEMISPHERES, REGION_SETS
from ..analysis.nulls import NULL_METHODS
from ..datasets.loaders import PATHOLOGY_GROUPS, PATHOLOGY_MEASURES
from ..workflows.associate import DISTANCE_SOURCES, GENE_SETS, associate
from . import add_overwrite_argument

HELP = ("correlate regional gene maps with a regional disease map (default: ADNI AD tau) "
        "with spatial-null p-values, FDR, source agreement, gene-axis gradient and Open Targets")


def add_arguments(parser):
    add_overwrite_argument(parser)
    parser.add_argument("--out", dest="out_dir", default="outputs/associate",
                        help="output folder (default: outputs/associate)")
    parser.add_argument("--genes", default=None,
                        help=f"gene set ({', '.join(GENE_SETS)}), a file with one symbol per "
                             "line, or comma-separated symbols (default: ad for the built-in "
                             "table, every column of an --expression table)")
    parser.add_argument("--expression", default=None,
                        help="first source: CSV of regions x genes (or other maps), region "
                             "names or abagen ids in the first column (default: the AHBA "
                             "regional DK-83 table, abagen)")
    parser.add_argument("--expression-name", default="abagen",
                        help="name of the first source (default: abagen)")
    parser.add_argument("--compare", default=None,
                        help="second source to compare, same layout (e.g. INR maps "
                             "parcellated onto DK regions)")
    parser.add_argument("--compare-name", default="inr",
                        help="name of the second source (default: inr)")
    parser.add_argument("--target", default="tau",
                        help=f"ADNI group map ({', '.join(PATHOLOGY_MEASURES)}) or a CSV/TSV/"
                             "xlsx of region -> value (default: tau)")
    parser.add_argument("--sheet", default=None,
                        help="sheet of an .xlsx target, name or 0-based number (default: the "
                             "first)")
    parser.add_argument("--group", default="ad", choices=PATHOLOGY_GROUPS,
                        help="ADNI group of the pathology map (default: ad)")
    parser.add_argument("--target-column", default=None,
                        help="value column of a target CSV with several columns")
    parser.add_argument("--region-set", default="cortex",
                        help=f"regions analysed: {', '.join(REGION_SETS)}, or comma-separated "
                             "region names (default: cortex; AV1451 binds off-target in "
                             "pallidum/putamen)")
    parser.add_argument("--hemisphere", default="both", choices=tuple(HEMISPHERES),
                        help="hemispheres analysed, and those that region names without a "
                             "hemisphere ('precuneus') describe (default: both)")
    parser.add_argument("--drop-missing", action="store_true",
                        help="drop regions of the set that an input lacks or has no value "
                             "for (NaN) instead of failing")
    parser.add_argument("--null-method", default="variogram",
                        choices=(*NULL_METHODS, "none"),
                        help="surrogate target maps for the spatial null: variogram (Burt et "
                             "al. 2020), moran (Moran spectral randomisation), spin (rotations "
                             "of the fsaverage5 sphere, cortex only), permutation (ignores "
                             "space), none (default: variogram)")
    parser.add_argument("--n-surrogates", type=int, default=1000,
                        help="number of surrogate maps (default: 1000)")
    parser.add_argument("--distances", default="auto",
                        help=f"inter-region distances: {', '.join(DISTANCE_SOURCES)}, or a CSV "
                             "(n x n) distance matrix (default: auto)")
    parser.add_argument("--gene-axis", default=None,
                        help="CSV of gene -> position on the gene axis, or 'none' (default: "
                             "spectral gene axis of the first source)")
    parser.add_argument("--n-discordant", type=int, default=6,
                        help="number of most discordant genes between sources (default: 6)")
    parser.add_argument("--min-abs-r", type=float, default=0.0,
                        help="genes weaker than this in both sources are not called "
                             "discordant (default: 0)")
    parser.add_argument("--open-targets", dest="open_targets_step",
                        action=argparse.BooleanOptionalAction, default=True,
                        help="correlate with the Open Targets AD score (default: yes; skipped "
                             "anyway when the maps are not scored genes)")
    parser.add_argument("--open-targets-absolute", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="plot |r| (default) or the signed r against the Open Targets "
                             "score (both are reported)")
    parser.add_argument("--open-targets-missing", default="drop", choices=("drop", "zero"),
                        help="genes without an Open Targets score: drop (default) or score 0")
    parser.add_argument("--n-permutations", type=int, default=10000,
                        help="gene shuffles of the gene-axis gradient test (default: 10000)")
    parser.add_argument("--random-state", type=int, default=0,
                        help="seed of surrogates and permutations (default: 0)")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                        help="write the figures (default: yes)")
    parser.add_argument("--figure-format", default="png", choices=("png", "pdf", "svg"),
                        help="figure file format (default: png)")


def run(args) -> int:
    result = associate(
        out_dir=args.out_dir, genes=args.genes, expression=args.expression,
        expression_name=args.expression_name, compare=args.compare,
        compare_name=args.compare_name, target=args.target, group=args.group,
        target_column=args.target_column, sheet=args.sheet, region_set=args.region_set,
        hemisphere=args.hemisphere, drop_missing=args.drop_missing,
        null_method=args.null_method, n_surrogates=args.n_surrogates,
        distances=args.distances, gene_axis=args.gene_axis, n_discordant=args.n_discordant,
        min_abs_r=args.min_abs_r, open_targets_step=args.open_targets_step,
        open_targets_absolute=args.open_targets_absolute,
        open_targets_missing=args.open_targets_missing, n_permutations=args.n_permutations,
        random_state=args.random_state, figures=args.figures,
        figure_format=args.figure_format, overwrite=args.overwrite, data_dir=args.data_dir,
    )
    summary = result.summary
    print(f"{summary['target']['name']}: {summary['regions']['n']} regions, "
          f"null {summary['null']['method'] or 'none'} "
          f"({summary['null']['n_surrogates']} surrogates)")
    for name, source in summary["sources"].items():
        line = (f"  {name}: {source['n_genes']} genes, FDR q<0.05 parametric "
                f"{source['pearson_q<0.05']}")
        if "pearson_q_spatial<0.05" in source:
            line += f", spatial null {source['pearson_q_spatial<0.05']}"
        if "axis_gradient" in source:
            gradient = source["axis_gradient"]
            line += f"; axis gradient r {gradient['r']:.2f}"
            if gradient["p_spatial"] is not None:
                line += f" (spatial-null p {gradient['p_spatial']:.3f})"
        if "open_targets" in source:
            line += f"; Open Targets R {source['open_targets']['r']:.2f}"
        print(line)
    if "agreement" in summary:
        agreement = summary["agreement"]
        print(f"  agreement R = {agreement['r']:.2f} over {agreement['n_genes']} genes "
              f"(paper 0.89); discordant: "
              f"{', '.join(d['gene'] for d in agreement['discordant'])}")
    print(f"wrote {len(result.files)} files to {args.out_dir}")
    return 0
