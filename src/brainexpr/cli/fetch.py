"""``brainexpr fetch``: list, verify or download the reference datasets."""

from __future__ import annotations

from ..datasets import list_datasets, plan_fetch
from ..datasets.fetch import MIRROR_ENV
from ..workflows.data import fetch_datasets, list_dataset_status

HELP = "list, verify or download reference datasets (resumable, every file checksum-verified)"


def add_arguments(parser):
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="datasets to download ('all': every dataset; 'ahba': the raw Allen "
                             "microarray data, ~4 GB)")
    parser.add_argument("--list", action="store_true", dest="list_only",
                        help="show each dataset, whether it is present and verified, and its citation")
    parser.add_argument("--base-url", default=None,
                        help=f"mirror tried first: a copy of the data folder served over http(s) "
                             f"or a local folder (default: ${MIRROR_ENV})")


def run(args) -> int:
    if args.list_only or not args.names:
        for row in list_dataset_status(data_dir=args.data_dir):
            state = "verified" if row["verified"] else "CORRUPTED" if row["present"] else "missing"
            print(f"{row['name']:<22} {state:<9} {row['description']}")
            if row["manual"]:
                print(f"{'':<22} manual: {row['manual']}")
            print(f"{'':<22} cite: {row['citation']}")
        print(f"{'ahba':<22} {'optional':<9} raw AHBA microarray download (~4 GB); "
              f"'brainexpr fetch ahba', then 'brainexpr ahba'")
        plan = plan_fetch(list_datasets(), data_dir=args.data_dir, base_url=args.base_url)
        print(f"brainexpr fetch all: {plan.describe()}")
        return 0
    if "ahba" in args.names:
        from ..ahba.download import fetch_ahba

        for path in fetch_ahba(data_dir=args.data_dir).values():
            print(path)
        args.names = [n for n in args.names if n != "ahba"]
        if not args.names:
            return 0
    for path in fetch_datasets(args.names, data_dir=args.data_dir, base_url=args.base_url):
        print(path)
    return 0
