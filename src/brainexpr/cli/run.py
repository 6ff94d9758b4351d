"""``brainexpr run``: the main job (what ``make demo`` runs)."""

from __future__ import annotations

from ..workflows.data import summarise_data

HELP = "run the main job on the built-in default data and write its outputs"


def add_arguments(parser):
    parser.add_argument("--out", default="outputs", help="output folder (default: outputs)")


def run(args) -> int:
    summarise_data(out_dir=args.out, data_dir=args.data_dir)
    print(f"wrote {args.out}/data_summary.json and {args.out}/data_summary.md")
    return 0
