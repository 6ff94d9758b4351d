"""``brainexpr embed``: the spectral gene axis of an expression table, with figures."""

from __future__ import annotations

import argparse

from ..geneaxis import AFFINITIES, CORRELATIONS
from ..workflows.models import embed_genes
from . import add_overwrite_argument
from .fit import add_source_arguments, flatten_genes

HELP = "compute the spectral gene axis (e_g in [0, 1]) of an expression table and plot it"


def add_arguments(parser):
    add_overwrite_argument(parser)
    add_source_arguments(parser, default_source="regional")
    parser.add_argument("--affinity", choices=list(AFFINITIES), default="shifted",
                        help="gene affinity from correlation r: shifted (1+r)/2 (default), "
                             "absolute |r|, positive max(r,0), gaussian exp(-((1-r)/0.5)^2)")
    parser.add_argument("--correlation", choices=list(CORRELATIONS), default="pearson",
                        help="correlation across rows (default: pearson)")
    parser.add_argument("--out-dir", default="gene_axis",
                        help="output folder: gene_axis.tsv, spectrum.tsv, gene_axis.json, "
                             "gene_axis.png (default: gene_axis)")
    parser.add_argument("--figure", action=argparse.BooleanOptionalAction, default=True,
                        help="write gene_axis.png (default: yes)")


def run(args) -> int:
    axis = embed_genes(source=args.source, genes=flatten_genes(args.genes), gene_set=args.gene_set,
                       atlas=args.atlas, affinity=args.affinity, correlation=args.correlation,
                       out_dir=args.out_dir, figure=args.figure, overwrite=args.overwrite,
                       data_dir=args.data_dir)
    ends = f"{', '.join(axis.order[:3])} ... {', '.join(axis.order[-3:])}"
    print(f"gene axis of {len(axis.genes)} genes (eigenvalue {axis.eigenvalue:.4f}): {ends}; "
          f"wrote {args.out_dir}")
    return 0
