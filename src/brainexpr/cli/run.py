"""``brainexpr run``: the main job (what ``make demo`` runs).

Its flags are generated from the keyword arguments of
:func:`brainexpr.workflows.run.run_main`, one flag per argument (``max_steps`` ->
``--max-steps``); ``--config FILE`` reads the same keys from a flat TOML file, and flags
given on the command line override the file.
"""

from __future__ import annotations

import argparse
import logging
import time

from ..datasets.fetch import OFFLINE_ENV
from ..workflows.config import load_config, workflow_defaults
from ..outputs import claimed_folder
from ..workflows.run import OUTPUT_ENTRIES, execute_run, plan_run, prepare_data, run_main

HELP = ("the main job: gene axis, model fit (auto: factorized INR for parcel means, donor "
        "kriging for samples), dense maps, regional tables, abagen comparison, tau association "
        "with spatial nulls, VAE, held-out accuracy, report")

_SKIP = {"data_dir"}


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_arguments(parser):
    parser.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    parser.add_argument("--config", default=None,
                        help="flat TOML file whose keys are the options below (flags override it)")
    parser.add_argument("--offline", action="store_true", default=None,
                        help=f"never download: stop when reference data are missing (default: "
                             f"${OFFLINE_ENV}; otherwise missing datasets are fetched first)")
    for name, default in workflow_defaults(run_main).items():
        if name in _SKIP:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=f"(default: {default})")
        elif isinstance(default, (list, tuple)):
            parser.add_argument(flag, dest=name, type=_list, default=argparse.SUPPRESS,
                                help=f"comma-separated (default: {','.join(map(str, default))})")
        elif default is None:  # numeric options whose None means "the model's default"
            parser.add_argument(flag, dest=name, type=float, default=argparse.SUPPRESS,
                                help="(default: the model design's own)")
        else:
            kind = type(default) if isinstance(default, (int, float)) else str
            parser.add_argument(flag, dest=name, type=kind, default=argparse.SUPPRESS,
                                help=f"(default: {default})")


def run(args) -> int:
    defaults = workflow_defaults(run_main)
    options = load_config(args.config, defaults) if args.config else {}
    options.update({name: getattr(args, name) for name in defaults
                    if name not in _SKIP and hasattr(args, name)})
    from pathlib import Path

    started = time.perf_counter()
    prepare_data(options.get("atlas", defaults["atlas"]), args.data_dir, args.offline)
    plan = plan_run(data_dir=args.data_dir, **options)  # checked once, before anything is written
    out = Path(args.out)
    # the lock is held from before run.log is opened: a second run gets one line, no log
    with claimed_folder(out, "run", OUTPUT_ENTRIES, overwrite=plan.options["overwrite"]):
        handler = logging.FileHandler(out / "run.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("brainexpr").addHandler(handler)
        try:
            summary = execute_run(out, plan, started=started)
        finally:
            logging.getLogger("brainexpr").removeHandler(handler)
            handler.close()
    print("\n".join(summary.lines()))
    return 0
