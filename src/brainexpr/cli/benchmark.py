"""``brainexpr benchmark``: every interpolation method on held-out data, side by side."""

from __future__ import annotations

import argparse

from ..evaluation.ablation import AXES
from ..evaluation.benchmark import DEFAULT_METHODS, METHODS, PROTOCOLS
from ..workflows.benchmark import DATASETS, ablation_study, benchmark_methods
from . import add_overwrite_argument

HELP = "compare interpolation methods on held-out sites, donors, parcels and genes (phantom + real)"


def add_arguments(parser):
    add_overwrite_argument(parser)
    parser.add_argument("--out-dir", default="benchmark",
                        help="output folder: CSV/JSON tables, figures/, summary.md (default: benchmark)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(DEFAULT_METHODS),
                        metavar="METHOD", help=f"methods to compare (default: {', '.join(DEFAULT_METHODS)}; also: "
                             f"{', '.join(m for m in METHODS if m not in DEFAULT_METHODS)})")
    parser.add_argument("--protocols", nargs="+", choices=list(PROTOCOLS), default=list(PROTOCOLS),
                        metavar="PROTOCOL", help=f"validation protocols (default: all: {', '.join(PROTOCOLS)})")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS),
                        help="phantom (known truth) and/or celltypes (real AHBA values) (default: both)")
    parser.add_argument("--n-genes", type=int, default=None,
                        help="phantom genes (default: 24; 6 with --quick)")
    parser.add_argument("--n-folds", type=int, default=None,
                        help="folds of the blocked, parcel and gene protocols (default: 5; 3 with --quick)")
    parser.add_argument("--block-size", type=float, default=20.0,
                        help="edge (mm) of the spatial blocks held out together (default: 20)")
    parser.add_argument("--buffer", type=float, default=8.0,
                        help="training sites closer than this (mm) to a held-out site are dropped "
                             "(default: 8)")
    parser.add_argument("--map-voxels", type=int, default=None,
                        help="2 mm brain voxels scored for map accuracy (default: 20000; 3000 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small run that checks the pipeline in a few minutes (not for results)")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                        help="write figures (default: yes)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    ablation = parser.add_argument_group(
        "ablation", "--ablation runs the paper's Fig. 3 ablations of its INR instead of the method "
                    "comparison (--methods, --protocols and --map-voxels do not apply)")
    ablation.add_argument("--ablation", action="store_true",
                          help="fit every value of each axis, score it on spatially held-out sites and "
                               "plot the loss curves next to held-out accuracy")
    ablation.add_argument("--axes", nargs="+", choices=list(AXES), default=list(AXES), metavar="AXIS",
                          help=f"ablation axes (default: all: {', '.join(AXES)})")
    ablation.add_argument("--max-folds", type=int, default=None,
                          help="blocked folds actually run (default: all; 1 with --quick)")
    ablation.add_argument("--max-sites", type=int, default=None,
                          help="random subset of sites, the same share per donor (default: all; 300 "
                               "with --quick)")
    ablation.add_argument("--max-steps", type=int, default=None,
                          help="training steps per variant (default: the paper's 5000; 10 with --quick)")
    ablation.add_argument("--batch-size", type=int, default=None,
                          help="sites per step (default: all, up to 65536 (site, gene) pairs; 8 with "
                               "--quick)")


def run(args) -> int:
    if args.ablation:
        result = ablation_study(
            out_dir=args.out_dir, axes=args.axes, datasets=args.datasets, n_genes=args.n_genes,
            n_folds=args.n_folds, max_folds=args.max_folds, max_sites=args.max_sites,
            max_steps=args.max_steps, batch_size=args.batch_size, block_size=args.block_size,
            buffer=args.buffer, quick=args.quick, figures=args.figures, random_state=args.random_state,
            overwrite=args.overwrite, data_dir=args.data_dir)
        print(f"ablation of {len(result.settings['axes'])} axes finished in "
              f"{result.settings['wall_time_s']:.0f} s; see {args.out_dir}/ablation.md")
        return 0
    result = benchmark_methods(
        out_dir=args.out_dir, methods=args.methods, protocols=args.protocols, datasets=args.datasets,
        n_genes=args.n_genes, n_folds=args.n_folds, block_size=args.block_size, buffer=args.buffer,
        map_voxels=args.map_voxels, quick=args.quick, figures=args.figures,
        random_state=args.random_state, overwrite=args.overwrite, data_dir=args.data_dir)
    print(f"benchmark of {len(result.settings['methods'])} methods finished in "
          f"{result.settings['wall_time_s']:.0f} s; see {args.out_dir}/summary.md")
    return 0
