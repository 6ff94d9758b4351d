"""``brainexpr vae``: the cross-scale graph VAE, with blocked CV, spatial nulls and baselines."""

from __future__ import annotations

import argparse

from ..analysis.association import HEMISPHERES
from ..analysis.graphs import GRAPH_METHODS, LAPLACIANS
from ..analysis.nulls import NULL_METHODS
from ..analysis.vulnerability import BASELINES, CV_SCHEMES
from ..datasets.loaders import PATHOLOGY_GROUPS, PATHOLOGY_MEASURES
from . import add_overwrite_argument

#: ``--genes`` names, as ``brainexpr.workflows.vae.GENE_SETS`` (kept here so that building
#: the parser does not import torch; a test checks that both agree).
GENE_SETS = ("l1000", "ad", "all")

HELP = ("fit the graph-regularised VAE from regional expression to Alzheimer vulnerability "
        "(default: L1000 genes -> ADNI AD atrophy, 68 cortical regions) and validate it: "
        "in-sample, spatially blocked CV, spatial null, PLS/ridge/PCA baselines")


def _threads(value: str):
    return None if value == "auto" else int(value)


def add_arguments(parser):
    add_overwrite_argument(parser)
    parser.add_argument("--out", dest="out_dir", default="outputs/vae",
                        help="output folder (default: outputs/vae)")
    parser.add_argument("--target", default="atrophy",
                        help=f"ADNI group map ({', '.join(PATHOLOGY_MEASURES)}) or a CSV/xlsx of "
                             "region -> value, e.g. your cortical-thinning effect sizes "
                             "(default: atrophy)")
    parser.add_argument("--group", default="ad", choices=PATHOLOGY_GROUPS,
                        help="ADNI group of a built-in target (default: ad)")
    parser.add_argument("--target-column", default=None,
                        help="value column of a target CSV with several columns")
    parser.add_argument("--sheet", default=None,
                        help="sheet of an .xlsx target, name or 0-based number (default: the "
                             "first)")
    parser.add_argument("--hemisphere", default="both", choices=tuple(HEMISPHERES),
                        help="cortical hemispheres analysed, and those that region names "
                             "without a hemisphere describe (default: both)")
    parser.add_argument("--genes", default="l1000",
                        help=f"gene set ({', '.join(GENE_SETS)}) or a file with one symbol per "
                             "line (default: l1000, 916 genes in the regional table)")
    parser.add_argument("--graph", default="atlas", choices=tuple(GRAPH_METHODS),
                        help="region graph of the smoothness penalty: atlas (parcels sharing a "
                             "face in the DK atlas), distance (nearest regions), connectome "
                             "(strongest ADNI fibre counts) (default: atlas)")
    parser.add_argument("--laplacian", default="normalized", choices=LAPLACIANS,
                        help="graph Laplacian (default: normalized)")
    parser.add_argument("--cv", default="lobe", choices=tuple(CV_SCHEMES),
                        help="held-out groups: lobe (x hemisphere), distance (compact "
                             "clusters), random (ignores space; comparison only) "
                             "(default: lobe)")
    parser.add_argument("--n-groups", type=int, default=10,
                        help="number of groups for --cv distance/random (default: 10)")
    parser.add_argument("--null-method", default="variogram", choices=(*NULL_METHODS, "none"),
                        help="surrogate targets of the spatial null; spin rotates the "
                             "fsaverage5 sphere (default: variogram)")
    parser.add_argument("--n-nulls", type=int, default=1000,
                        help="surrogates for the baselines (default: 1000)")
    parser.add_argument("--n-nulls-vae", type=int, default=100,
                        help="surrogates for the VAE, each a full blocked CV (default: 100)")
    parser.add_argument("--baselines", default="pls,ridge,pca",
                        help=f"comma-separated baselines among {', '.join(BASELINES)} "
                             "(default: pls,ridge,pca; empty for none)")
    parser.add_argument("--n-components", type=int, default=6,
                        help="latent programs (default: 6)")
    parser.add_argument("--hidden-sizes", default="32",
                        help="encoder hidden widths, comma-separated (default: 32)")
    parser.add_argument("--beta", type=float, default=0.01, help="KL weight (default: 0.01)")
    parser.add_argument("--reconstruction-weight", type=float, default=1.0,
                        help="weight of the expression reconstruction (default: 1)")
    parser.add_argument("--prediction-weight", type=float, default=1.0,
                        help="weight of the vulnerability prediction (default: 1)")
    parser.add_argument("--graph-weight", type=float, default=0.1,
                        help="weight of trace(Z^T L Z) on the programs (default: 0.1)")
    parser.add_argument("--prediction-graph-weight", type=float, default=0.0,
                        help="weight of the graph penalty on the predictions (default: 0)")
    parser.add_argument("--n-epochs", type=int, default=300,
                        help="full-batch training steps (default: 300)")
    parser.add_argument("--learning-rate", type=float, default=2e-2,
                        help="AdamW learning rate (default: 0.02)")
    parser.add_argument("--n-top-genes", type=int, default=20,
                        help="genes per sign and program in top_genes.csv (default: 20)")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                        help="write the figures (default: yes)")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when available), cpu or cuda (default: auto)")
    parser.add_argument("--n-threads", type=_threads, default=1,
                        help="CPU threads of torch and BLAS, or 'auto' to leave the libraries' "
                             "setting (default: 1, fastest for this small problem)")
    parser.add_argument("--random-state", type=int, default=0,
                        help="seed of the fits and surrogates (default: 0)")


def run(args) -> int:
    from ..workflows.vae import MODEL_NAME, fit_vae

    result = fit_vae(
        out_dir=args.out_dir, target=args.target, group=args.group,
        target_column=args.target_column, sheet=args.sheet, hemisphere=args.hemisphere,
        genes=args.genes, graph=args.graph,
        laplacian=args.laplacian, cv=args.cv, n_groups=args.n_groups,
        null_method=args.null_method, n_nulls=args.n_nulls, n_nulls_vae=args.n_nulls_vae,
        baselines=args.baselines, n_components=args.n_components,
        hidden_sizes=args.hidden_sizes, beta=args.beta,
        reconstruction_weight=args.reconstruction_weight,
        prediction_weight=args.prediction_weight, graph_weight=args.graph_weight,
        prediction_graph_weight=args.prediction_graph_weight, n_epochs=args.n_epochs,
        learning_rate=args.learning_rate, n_top_genes=args.n_top_genes, figures=args.figures,
        device=args.device, n_threads=args.n_threads, random_state=args.random_state,
        overwrite=args.overwrite, data_dir=args.data_dir,
    )
    summary = result.summary
    print(f"{summary['target']}: {summary['regions']['n']} regions x {summary['genes']['n']} "
          f"genes; blocked CV by {summary['cv']['scheme']} ({summary['cv']['groups']} groups)")
    print(f"  {'model':<10} {'in-sample r':>11} {'R2':>6} {'CV r':>6} {'CV R2':>6} "
          f"{'null p':>7}")
    for name, row in summary["validation"].items():
        null = "n/a" if row["null_p"] is None else f"{row['null_p']:.3f}"
        print(f"  {name:<10} {row['in_sample_r']:>11.3f} {row['in_sample_r2']:>6.3f} "
              f"{row['cv_r']:>6.3f} {row['cv_r2']:>6.3f} {null:>7}")
    paper = summary["paper"]
    print(f"  paper: in-sample r {paper['r']}, R2 {paper['r2']} (non-public thinning map; "
          f"no held-out evaluation); {MODEL_NAME} losses "
          + ", ".join(f"{k} {v:.3g}" for k, v in summary["loss_terms"].items()))
    if args.out_dir:
        print(f"wrote {len(result.files)} files to {args.out_dir} "
              f"({summary['timings']['total_s']:.0f} s)")
    return 0
