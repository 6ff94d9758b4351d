"""``brainexpr predict``: dense NIfTI maps of genes from a fitted model."""

from __future__ import annotations

import argparse

from ..maps import NAMED_MASKS
from ..maps.surface import SURFACE_SPACES
from ..models.baselines import STD_KINDS
from ..models.inr import PRECISIONS
from ..workflows.models import predict_maps
from . import add_overwrite_argument
from .fit import add_genes_argument, flatten_genes, optional_int

HELP = ("predict dense expression maps (NIfTI, or GIFTI on fsaverage5; BIDS-like names) from a "
        "fitted model")


def add_arguments(parser):
    add_overwrite_argument(parser)
    parser.add_argument("--model", default="model.pt", help="model file (default: model.pt)")
    add_genes_argument(parser, "genes to map, comma-separated (default: all of the model)")
    parser.add_argument("--resolution", type=optional_int, default=2,
                        help="MNI152 grid in mm: 1 or 2, 'none' keeps the mask's grid (default: 2)")
    parser.add_argument("--mask", default="brain",
                        help=f"{', '.join(NAMED_MASKS)} or a NIfTI mask (default: brain)")
    parser.add_argument("--space", default="MNI152", choices=("MNI152", *SURFACE_SPACES),
                        help="MNI152 volumes, or fsaverage5: the model at the mid-thickness "
                             "vertices, one .func.gii per gene and hemisphere (default: MNI152)")
    parser.add_argument("--out-dir", default="maps", help="output folder (default: maps)")
    parser.add_argument("--stack", action="store_true", help="one 4-D file instead of one per gene")
    parser.add_argument("--std", action=argparse.BooleanOptionalAction, default=None,
                        help="write standard-deviation maps (_std) too; default: whenever the model "
                             "gives one (kriging models, INR ensembles)")
    parser.add_argument("--std-kind", choices=list(STD_KINDS), default="population",
                        help="kriging models: SD of the predicted population map (default), or "
                             "of a new donor's sample around it (donor deviation and noise added)")
    parser.add_argument("--compress", action=argparse.BooleanOptionalAction, default=True,
                        help="write .nii.gz (default) or .nii")
    parser.add_argument("--chunk-size", type=optional_int, default=None,
                        help="voxels per network pass (default: auto)")
    parser.add_argument("--device", default=None,
                        help="INR models: override the model's device: auto, cpu or cuda")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="fp32",
                        help="INR models: GPU precision, checked against fp32 (default: fp32)")


def run(args) -> int:
    files = predict_maps(model=args.model, genes=flatten_genes(args.genes),
                         resolution=args.resolution, mask=args.mask, out_dir=args.out_dir,
                         stack=args.stack, std=args.std, compress=args.compress,
                         chunk_size=args.chunk_size, device=args.device,
                         precision=args.precision, space=args.space, overwrite=args.overwrite,
                         data_dir=args.data_dir, std_kind=args.std_kind)
    print(f"wrote {len(files)} map file(s) into {args.out_dir}")
    return 0
