"""``brainexpr info``: load all reference data and summarise it."""

from __future__ import annotations

import json

from ..workflows.data import summarise_data

HELP = "load every reference dataset, check it, and print (or write) a data summary"


def add_arguments(parser):
    parser.add_argument("--out", default=None, help="folder to write data_summary.json/.md into")


def run(args) -> int:
    summary = summarise_data(out_dir=args.out, data_dir=args.data_dir)
    print(json.dumps(summary, indent=1))
    return 0
