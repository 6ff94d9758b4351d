"""``brainexpr atlas``: the whole transcriptome as one chunked gene atlas (Zarr v3 on Dask).

``build`` fits a model for every gene of a source and writes the atlas store; ``get``,
``parcellate`` and ``match`` answer questions from it (see :mod:`brainexpr.transcriptome`).
"""

from __future__ import annotations

import argparse

from ..datasets import ATLASES
from ..maps import NAMED_MASKS
from ..transcriptome import store as S
from ..transcriptome.build import SCHEDULER_ENV
from . import add_overwrite_argument
from .fit import add_genes_argument, flatten_genes, gene_list, optional_int

HELP = "gene atlas of the whole transcriptome: build (Dask -> Zarr), get, parcellate, match"


def _chunks(text: str) -> tuple[int, int]:
    try:
        genes, voxels = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GENES,VOXELS (e.g. 256,16384), got "
                                         f"{text!r}") from None
    return genes, voxels


def _add_build(parser) -> None:
    parser.add_argument("--out", default="atlas.zarr",
                        help="the atlas store, a folder (default: atlas.zarr); an unfinished one "
                             "built with the same arguments is resumed")
    parser.add_argument("--source", default="regional",
                        help="'regional' (AHBA DK-83 table, default), 'celltypes', a sample or "
                             "regional CSV/TSV, or a 'brainexpr ahba' output folder")
    parser.add_argument("--model", default="auto",
                        help="model to fit (default auto: parcel kriging for parcel means, donor "
                             "kriging for sample sites)")
    parser.add_argument("--from-model", dest="model_file", default=None, metavar="FILE",
                        help="evaluate an existing model file instead of fitting one")
    add_genes_argument(parser, "genes to include, comma-separated (default: --gene-set)")
    parser.add_argument("--gene-set", default="all", choices=["all", "ad", "ad114", "l1000"],
                        help="genes without --genes (default: all genes of the source)")
    parser.add_argument("--atlas", default="dk83", help="atlas of a regional source (default: dk83)")
    parser.add_argument("--resolution", type=optional_int, default=2,
                        help="MNI152 grid in mm: 1 or 2 (default: 2)")
    parser.add_argument("--mask", default="brain",
                        help=f"{', '.join(NAMED_MASKS)} or a NIfTI mask (default: brain)")
    parser.add_argument("--dtype", choices=list(S.DTYPES), default="float16",
                        help="stored value type (default: float16; its largest rounding error is "
                             "measured and recorded in the store)")
    parser.add_argument("--chunks", type=_chunks, default=S.DEFAULT_CHUNKS, metavar="GENES,VOXELS",
                        help="chunk (= compute block) shape (default: "
                             f"{S.DEFAULT_CHUNKS[0]},{S.DEFAULT_CHUNKS[1]})")
    parser.add_argument("--std", action="store_true",
                        help="also store the model's standard deviation (kriging, INR "
                             "ensembles; twice the storage, slower for parcel kriging)")
    parser.add_argument("--accuracy", action=argparse.BooleanOptionalAction, default=True,
                        help="store per-gene held-out r (parcel kriging of a regional table)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help=f"Dask scheduler address (default: ${SCHEDULER_ENV}, else local "
                             "threads; 'local' forces them)")
    parser.add_argument("--n-workers", type=int, default=None,
                        help="threads of the local scheduler (default: one per core)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")


def _run_build(args) -> int:
    from ..transcriptome.build import build_atlas

    result = build_atlas(out=args.out, source=args.source, model=args.model,
                         model_file=args.model_file, genes=flatten_genes(args.genes),
                         gene_set=args.gene_set, atlas=args.atlas, resolution=args.resolution,
                         mask=args.mask, dtype=args.dtype, chunks=args.chunks, std=args.std,
                         accuracy=args.accuracy, scheduler=args.scheduler,
                         n_workers=args.n_workers, random_state=args.random_state,
                         data_dir=args.data_dir)
    print(f"wrote {result.path}: {result.n_blocks} blocks ({result.n_computed} computed now) in "
          f"{result.seconds:.1f} s")
    return 0


def _add_get(parser) -> None:
    parser.add_argument("store", metavar="STORE", help="atlas store")
    parser.add_argument("genes", metavar="GENE", nargs="+", type=gene_list,
                        help="genes to write (names, or comma-separated lists)")
    parser.add_argument("--out-dir", default="maps", help="output folder (default: maps)")
    parser.add_argument("--std", action="store_true", help="also write the _std maps")
    parser.add_argument("--compress", action=argparse.BooleanOptionalAction, default=True,
                        help="write .nii.gz (default) or .nii")
    add_overwrite_argument(parser)


def _run_get(args) -> int:
    from ..transcriptome.query import get_maps

    files = get_maps(args.store, flatten_genes(args.genes), out_dir=args.out_dir, std=args.std,
                     compress=args.compress, overwrite=args.overwrite)
    print(f"wrote {len(files)} map file(s) into {args.out_dir}")
    return 0


def _add_parcellate(parser) -> None:
    parser.add_argument("store", metavar="STORE", help="atlas store")
    parser.add_argument("--atlas", choices=list(ATLASES), default="dk83",
                        help="atlas (default: dk83)")
    parser.add_argument("--out", default="regional.csv",
                        help="CSV of regions x genes (default: regional.csv)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help=f"Dask scheduler address (default: ${SCHEDULER_ENV}, else local)")


def _run_parcellate(args) -> int:
    from ..outputs import check_output_file, record_output_file
    from ..transcriptome.query import parcellate_atlas
    from ..utils import atomic_path

    out = check_output_file(args.out)     # before the work: never replaces a user's file
    table = parcellate_atlas(args.store, args.atlas, scheduler=args.scheduler,
                             data_dir=args.data_dir)
    with atomic_path(out) as path:
        table.to_csv(path)
    record_output_file(out, "atlas parcellate")
    print(f"wrote {args.out} ({table.shape[0]} regions x {table.shape[1]} genes)")
    return 0


def _add_match(parser) -> None:
    from ..analysis.nulls import NULL_METHODS

    parser.add_argument("store", metavar="STORE", help="atlas store")
    parser.add_argument("map", metavar="MAP",
                        help="your map: a NIfTI in MNI152 space or a CSV/TSV of region -> value")
    parser.add_argument("--atlas", choices=list(ATLASES), default="dk83",
                        help="parcels the comparison is made on (default: dk83)")
    parser.add_argument("--column", default=None, help="value column of a CSV with several")
    parser.add_argument("--n-surrogates", type=int, default=1000,
                        help="spatial-null surrogates of the map (default: 1000)")
    parser.add_argument("--null-method", choices=list(NULL_METHODS), default="variogram",
                        help="surrogate method (default: variogram)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--out-dir", default="matches",
                        help="folder for matches.tsv and matches.png/.svg (default: matches)")
    parser.add_argument("--top", type=int, default=20, help="genes shown in the figure (default: 20)")
    add_overwrite_argument(parser)


def _run_match(args) -> int:
    from ..transcriptome.query import match_map

    table = match_map(args.store, args.map, atlas=args.atlas, column=args.column,
                      n_surrogates=args.n_surrogates, null_method=args.null_method,
                      random_state=args.random_state, out_dir=args.out_dir, top=args.top,
                      overwrite=args.overwrite, data_dir=args.data_dir)
    best = table.iloc[0]
    print(f"ranked {len(table)} genes against {args.map} on {table.attrs['n_regions']} regions; "
          f"top: {table.index[0]} (r = {best['pearson_r']:.3f}, spatial p = "
          f"{best['pearson_p_spatial']:.3g}); wrote {args.out_dir}/matches.tsv")
    return 0


#: subcommand -> (help, add_arguments, run)
COMMANDS = {
    "build": ("fit a model for every gene and write the atlas store (Dask, resumable)",
              _add_build, _run_build),
    "get": ("NIfTI maps of some genes from an atlas", _add_get, _run_get),
    "parcellate": ("regions x all genes of an atlas on a parcellation (CSV)", _add_parcellate,
                   _run_parcellate),
    "match": ("rank every gene by spatial correlation with your map (spatial nulls, FDR)",
              _add_match, _run_match),
}


def add_arguments(parser):
    commands = parser.add_subparsers(dest="atlas_command", metavar="ATLAS_COMMAND")
    commands.required = True
    for name, (text, add, run_command) in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--data-dir", default=argparse.SUPPRESS,
                         help="reference data folder (as for every command)")
        add(sub)
        sub.set_defaults(_atlas_run=run_command)


def run(args) -> int:
    return args._atlas_run(args)
