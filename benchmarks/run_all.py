"""Run every benchmark script one after the other (``make benchmark``).

Each script measures its subject next to a baseline in the same run and prints its table;
results go to ``benchmarks/results/`` (git-ignored). The numbers recorded in
BENCHMARKS.md come from these scripts. Without the paper scripts a full run takes about an
hour on a 2-core CPU (most of it the 1 mm dense maps and the full-size raw AHBA data).

The seed paper's experiments (issue 17) run at the reduced CPU scale that BENCHMARKS.md
states with their numbers, the paper's 5,000 steps on mini-batches:

``paper-table1``
    Table 1 on the phantom: 4 genes, 500 steps of 96 sites (about 25 min on the loaded
    machine).
``paper-config``, ``paper-config-celltypes``
    the paper's configuration, two model selections: blocked folds 0-1, held-out donors
    1-2 and (phantom) map vs truth; 32 sites x 4 phantom genes or 8 sites x 8 cell types
    per step. These are 9 paper-sized INR fits of each selection, several hours in one
    process on the 2-core CPU (BENCHMARKS.md gives the wall time per fit); their full
    scale, and ``brainexpr benchmark --ablation`` in full, are GPU jobs.

``--quick`` runs the short variants where a script has one (for the paper scripts: a few
steps, to check that they run).

Usage::

    .venv/bin/python benchmarks/run_all.py [--quick] [--only inr,nulls,vae,ahba,heldout,...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: added to the paper scripts' arguments with --quick: a few steps on a small map sample
_PAPER_QUICK = ["--n-genes", "2", "--max-steps", "20", "--eval-every", "10", "--map-voxels", "2000"]
#: name -> (script, arguments, arguments added with --quick)
SCRIPTS = {
    "heldout": ("heldout_accuracy.py", ["--out-dir", str(RESULTS / "heldout_accuracy")], ["--quick"]),
    "inr": ("bench_inr.py", ["--out", str(RESULTS / "bench_inr.json")],
            ["--sections", "accuracy,fit,dense2"]),
    "nulls": ("spatial_nulls.py", ["--json", str(RESULTS / "spatial_nulls.json")], []),
    "vae": ("vae.py", ["--json", str(RESULTS / "vae.json")], ["--quick"]),
    "ahba": ("bench_ahba.py", [], []),
    "paper-table1": ("paper_table1.py",
                     ["--n-genes", "4", "--max-steps", "500", "--eval-every", "100",
                      "--out", str(RESULTS / "paper_table1.csv")],
                     _PAPER_QUICK),
    "paper-config": ("paper_config.py",
                     ["--datasets", "phantom", "--protocols", "blocked,donor,map", "--max-folds", "2",
                      "--out-dir", str(RESULTS / "paper_config")],
                     _PAPER_QUICK),
    "paper-config-celltypes": ("paper_config.py",
                               ["--datasets", "celltypes", "--protocols", "blocked,donor",
                                "--max-folds", "2", "--pairs-per-step", "64", "--eval-every", "250",
                                "--patience", "4", "--out-dir", str(RESULTS / "paper_config_celltypes")],
                               _PAPER_QUICK),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short variants where available")
    parser.add_argument("--only", default=",".join(SCRIPTS), help="comma-separated subset")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    failed = []
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if name not in SCRIPTS:
            parser.error(f"unknown benchmark {name!r}; choose from {', '.join(SCRIPTS)}")
        script, arguments, quick = SCRIPTS[name]
        command = [sys.executable, str(HERE / script), *arguments, *(quick if args.quick else [])]
        print(f"== {name}: {' '.join(command)}", flush=True)
        start = time.perf_counter()
        if subprocess.run(command, env=env, check=False).returncode != 0:
            failed.append(name)
        print(f"== {name}: {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
