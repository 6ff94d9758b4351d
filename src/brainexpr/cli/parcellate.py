"""``brainexpr parcellate``: regional averages of a model's dense maps (CSV regions x genes)."""

from __future__ import annotations

import argparse

from ..datasets import ATLASES
from ..maps.surface import SURFACE_SPACES
from ..workflows.models import parcellate_maps
from .fit import add_genes_argument, flatten_genes

HELP = "average a model's dense maps within atlas parcels (DK-83, Brainnetome-246) into a CSV"


def add_arguments(parser):
    parser.add_argument("--model", default="model.pt", help="model file (default: model.pt)")
    parser.add_argument("--atlas", choices=list(ATLASES), default="dk83",
                        help="atlas (default: dk83)")
    add_genes_argument(parser, "genes, comma-separated (default: all of the model)")
    parser.add_argument("--out", default="regional.csv",
                        help="CSV of regions x genes (default: regional.csv)")
    parser.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True,
                        help="DK-83: also write <out>_comparison.csv (Pearson r with the AHBA "
                             "regional table within the brain mask; default: yes)")
    parser.add_argument("--device", default=None,
                        help="override the model's device: auto, cpu or cuda")
    parser.add_argument("--space", default="MNI152", choices=("MNI152", *SURFACE_SPACES),
                        help="MNI152 voxels, or fsaverage5: vertex means within the 68 "
                             "cortical DK regions of the fsaverage5 annotations (--atlas dk83; "
                             "default: MNI152)")


def run(args) -> int:
    means, comparison = parcellate_maps(model=args.model, atlas=args.atlas,
                                        genes=flatten_genes(args.genes), out=args.out,
                                        compare=args.compare, device=args.device,
                                        space=args.space, data_dir=args.data_dir)
    line = f"wrote {args.out} ({means.shape[0]} regions x {means.shape[1]} genes)"
    if comparison is not None:
        line += (f"; median Pearson r with the regional table: voxel "
                 f"{comparison['r_voxel'].median():.3f}, regional "
                 f"{comparison['r_regional'].median():.3f}")
    print(line)
    return 0
