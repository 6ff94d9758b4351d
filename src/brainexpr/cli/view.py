"""``brainexpr view OUTPUT_DIR``: browse the gene maps of an output folder (NiiVue)."""

from __future__ import annotations

from ..workflows.view import DEFAULT_PORT, view_maps
from . import add_overwrite_argument

HELP = "browse the gene maps of an output folder in a web page (served locally, or --static)"


def _genes(text: str) -> list[str]:
    return [gene.strip() for gene in text.split(",") if gene.strip()]


def add_arguments(parser):
    add_overwrite_argument(parser)
    parser.add_argument("output_dir", metavar="OUTPUT_DIR",
                        help="folder written by 'brainexpr run', or a gene-atlas store "
                             "('brainexpr atlas build': any gene, maps read when picked)")
    parser.add_argument("--static", action="store_true",
                        help="write a static page (opens from disk) instead of serving one")
    parser.add_argument("--out", default=None,
                        help="folder of the static page (default: OUTPUT_DIR/viewer)")
    parser.add_argument("--model", default=None, help="show only this model's maps (default: all)")
    parser.add_argument("--resolution", type=int, choices=[1, 2], default=None,
                        help="map resolution in mm (default: 2 when present, else 1)")
    parser.add_argument("--genes", type=_genes, default=None,
                        help="comma-separated genes to show (default: all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port on 127.0.0.1 (default: {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--no-browser", dest="open_browser", action="store_false",
                        help="do not open a web browser")


def run(args) -> int:
    index = view_maps(args.output_dir, static=args.static, out=args.out, model=args.model,
                      resolution=args.resolution, genes=args.genes, port=args.port,
                      open_browser=args.open_browser, overwrite=args.overwrite,
                      data_dir=args.data_dir)
    if index is not None:
        print(f"wrote the map viewer: {index}")
    return 0
