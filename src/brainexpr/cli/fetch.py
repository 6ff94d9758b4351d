"""``brainexpr fetch``: list, verify or download the reference datasets."""

from __future__ import annotations

from ..workflows.data import fetch_datasets, list_dataset_status

HELP = "list, verify or download reference datasets (the only command that uses the network)"


def add_arguments(parser):
    parser.add_argument("names", nargs="*", metavar="NAME", help="datasets to download")
    parser.add_argument("--list", action="store_true", dest="list_only",
                        help="show each dataset, whether it is present and verified, and its citation")


def run(args) -> int:
    if args.list_only or not args.names:
        for row in list_dataset_status(data_dir=args.data_dir):
            state = "verified" if row["verified"] else "CORRUPTED" if row["present"] else "missing"
            print(f"{row['name']:<22} {state:<9} {row['description']}")
            print(f"{'':<22} cite: {row['citation']}")
        return 0
    for path in fetch_datasets(args.names, data_dir=args.data_dir):
        print(path)
    return 0
