"""Run every benchmark script one after the other (``make benchmark``).

Each script measures its subject next to a baseline in the same run and prints its table;
results go to ``benchmarks/results/`` (git-ignored). The numbers recorded in
BENCHMARKS.md come from these scripts. A full run takes about an hour on a 2-core CPU
(most of it the 1 mm dense maps and the full-size raw AHBA data); ``--quick`` runs the
short variants where a script has one.

Usage::

    .venv/bin/python benchmarks/run_all.py [--quick] [--only inr,nulls,vae,ahba,heldout]
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

#: name -> (script, arguments, arguments added with --quick)
SCRIPTS = {
    "heldout": ("heldout_accuracy.py", ["--out-dir", str(RESULTS / "heldout_accuracy")], ["--quick"]),
    "inr": ("bench_inr.py", ["--out", str(RESULTS / "bench_inr.json")],
            ["--sections", "accuracy,fit,dense2"]),
    "nulls": ("spatial_nulls.py", ["--json", str(RESULTS / "spatial_nulls.json")], []),
    "vae": ("vae.py", ["--json", str(RESULTS / "vae.json")], ["--quick"]),
    "ahba": ("bench_ahba.py", [], []),
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
