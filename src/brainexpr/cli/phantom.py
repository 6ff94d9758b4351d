"""``brainexpr phantom``: phantom AHBA data with known ground truth."""

from __future__ import annotations

from ..workflows.phantom import make_phantom_dataset
from . import add_overwrite_argument

HELP = "generate phantom AHBA samples at the real 3,702 sites with known ground-truth maps"


def add_arguments(parser):
    add_overwrite_argument(parser)
    parser.add_argument("--out-dir", default="phantom",
                        help="output folder: phantom_samples.csv, phantom_truth-at-sites.csv, "
                             "phantom_genes.csv, phantom_settings.json, truth volumes (default: phantom)")
    parser.add_argument("--n-genes", type=int, default=20, help="number of phantom genes (default: 20)")
    parser.add_argument("--resolutions", type=int, nargs="+", choices=[1, 2], default=[1, 2],
                        help="grids (mm) of the ground-truth volumes (default: 1 2)")
    parser.add_argument("--noise", type=float, default=0.4,
                        help="measurement-noise SD in units of the truth SD (default: 0.4)")
    parser.add_argument("--reproducibility", type=float, nargs=2, default=[0.1, 0.9],
                        metavar=("LOW", "HIGH"),
                        help="range of the target between-donor reproducibility (default: 0.1 0.9)")
    parser.add_argument("--n-anchors", type=int, default=10,
                        help="real genes whose DK-83 profiles give the coarse patterns (default: 10)")
    parser.add_argument("--symmetry", type=float, default=0.0,
                        help="pull every truth towards its left-right mirror image: 0 = the default "
                             "phantom, 1 = exactly symmetric truths (default: 0)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")


def run(args) -> int:
    phantom = make_phantom_dataset(
        out_dir=args.out_dir, n_genes=args.n_genes, resolutions=args.resolutions, noise=args.noise,
        reproducibility=args.reproducibility, n_anchors=args.n_anchors, symmetry=args.symmetry,
        random_state=args.random_state, overwrite=args.overwrite, data_dir=args.data_dir)
    ds = phantom.genes["ds_samples"]
    print(f"wrote {len(phantom.gene_names)} phantom genes at {len(phantom.values)} sites to "
          f"{args.out_dir} (between-donor reproducibility from the samples: "
          f"{ds.min():.2f} to {ds.max():.2f})")
    return 0
