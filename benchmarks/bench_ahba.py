"""Benchmark of the AHBA raw-data pipeline on full-size synthetic donors.

Writes six synthetic donors in the exact raw Allen format (58,692 probes x the real
sample counts, 3,702 samples, about 2.5 GB of CSV) unless they already exist, then
measures, each in a fresh Python process (wall time and peak resident memory):

0. optional baseline: abagen 0.1.3 ``get_expression_data`` (defaults, same atlas) on the
   same files, when ``--abagen-python`` names an interpreter that has abagen (it needs
   pandas < 2, so it cannot live in the brainexpr environment);
1. baseline: reading the twelve matrices the way abagen does
   (``pandas.read_csv(header=None, index_col=0)``, float64 frames kept in memory);
2. ``brainexpr ahba`` workflow, cold: empty cache, every CSV parsed;
3. the same command again: warm cache (result reused);
4. other options on the warm parse cache (``lr_mirror='leftright'``,
   ``missing='interpolate'``): only the CSV parsing is saved.

Usage::

    python benchmarks/bench_ahba.py [--work /tmp/brainexpr-bench-ahba] [--keep]
                                    [--abagen-python /path/to/venv-with-abagen/bin/python]

Prints a table and writes ``results.json`` into the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CHILD_PREAMBLE = textwrap.dedent("""
    import json, resource, sys, time
    t0 = time.perf_counter()
""")
CHILD_REPORT = textwrap.dedent("""
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024 ** 2
    cpu = usage.ru_utime + usage.ru_stime
    print("RESULT " + json.dumps({"seconds": seconds, "cpu_s": cpu, "peak_gib": peak, **extra}))
""")


def run_child(code: str, python: str = sys.executable) -> dict:
    """Run ``code`` in a fresh interpreter; return its reported time and peak memory."""
    script = CHILD_PREAMBLE + textwrap.dedent(code) + CHILD_REPORT
    started = time.perf_counter()
    proc = subprocess.run([python, "-c", script], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    result["process_wall_s"] = wall
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/brainexpr-bench-ahba",
                        help="folder for the synthetic download, cache and outputs")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic download")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--abagen-python", default=None,
                        help="a Python interpreter with abagen installed (abagen needs "
                             "pandas < 2, so it lives in its own environment); when given, "
                             "abagen.get_expression_data runs on the same files as a baseline")
    args = parser.parse_args(argv)
    work = Path(args.work)
    raw = work / "raw"
    cache = work / "cache"
    results = {"machine": f"{os.cpu_count()} CPU cores", "python": sys.version.split()[0],
               "load_average_start": [round(x, 2) for x in os.getloadavg()]}

    marker = raw / "complete.json"
    if not marker.is_file():
        print("writing full-size synthetic donors ...", flush=True)
        started = time.perf_counter()
        from brainexpr.ahba.synthetic import write_synthetic_download

        write_synthetic_download(raw, full_size=True, random_state=0)
        marker.write_text(json.dumps({"full_size": True}))
        results["generate_s"] = round(time.perf_counter() - started, 1)
    size = sum(p.stat().st_size for p in raw.rglob("*.csv"))
    results["raw_csv_gib"] = round(size / 1024 ** 3, 2)
    print(f"raw download: {results['raw_csv_gib']} GiB of CSV", flush=True)

    if not args.skip_baseline:
        print("baseline: abagen-style pandas read (float64) ...", flush=True)
        results["baseline_read"] = run_child(f"""
            import pandas as pd
            from pathlib import Path
            frames = []
            for folder in sorted(Path({str(raw)!r}).glob("normalized_microarray_donor*")):
                for name in ("MicroarrayExpression.csv", "PACall.csv"):
                    frames.append(pd.read_csv(folder / name, header=None, index_col=0))
            extra = {{"frames": len(frames)}}
        """)

    if args.abagen_python:
        from brainexpr.datasets import fetch_file

        atlas = fetch_file("regional/imaging-transcriptomics-1.1.0/"
                           "atlas-desikankilliany_1mm_MNI152.nii.gz")
        info = fetch_file("regional/imaging-transcriptomics-1.1.0/atlas_regions_info.csv")
        layout = work / "abagen_data"
        layout.mkdir(exist_ok=True)
        if not (layout / "microarray").exists():
            (layout / "microarray").symlink_to(raw.resolve())
        print("baseline: abagen.get_expression_data (defaults) ...", flush=True)
        results["baseline_abagen"] = run_child(f"""
            import abagen, nibabel as nib, pandas as pd
            info = pd.read_csv({str(info)!r})[["id", "label", "hemisphere", "structure"]]
            table = abagen.get_expression_data(nib.load({str(atlas)!r}), info,
                                               data_dir={str(layout)!r}, verbose=0)
            extra = {{"abagen": abagen.__version__, "shape": list(table.shape)}}
        """, python=args.abagen_python)

    shutil.rmtree(cache, ignore_errors=True)
    command = f"""
        from brainexpr.workflows.ahba import process_ahba_download
        summary = process_ahba_download({str(raw)!r}, {str(work / 'out')!r}, overwrite=True,
                                        cache_dir={str(cache)!r}, {{options}})
        extra = {{"summary": summary}}
    """
    print("brainexpr ahba, cold cache ...", flush=True)
    results["cold"] = run_child(command.replace("{options}", ""))
    print("brainexpr ahba, same command again (warm cache) ...", flush=True)
    results["warm_same"] = run_child(command.replace("{options}", ""))
    print("brainexpr ahba, other options (parsed matrices cached) ...", flush=True)
    results["warm_other_options"] = run_child(
        command.replace("{options}", "lr_mirror='leftright', missing='interpolate'"))

    print()
    print(f"{'step':<34}{'wall s':>10}{'CPU s':>10}{'peak GiB':>10}")
    for key, label in (("baseline_abagen", "baseline: abagen 0.1.3 workflow"),
                       ("baseline_read", "baseline: abagen-style read only"),
                       ("cold", "brainexpr ahba, cold"),
                       ("warm_same", "brainexpr ahba, warm (same opts)"),
                       ("warm_other_options", "brainexpr ahba, other options")):
        if key in results:
            r = results[key]
            print(f"{label:<34}{r['seconds']:>10.1f}{r['cpu_s']:>10.1f}{r['peak_gib']:>10.2f}")
    summary = results["cold"]["summary"]
    print(f"\noutput: {summary['n_samples']} samples x {summary['n_genes']} genes, "
          f"{summary['n_regions']} regions")
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average (1, 5, 15 min) at start {results['load_average_start']}, "
          f"at end {results['load_average_end']}")
    with open(work / "results.json", "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    print(f"wrote {work / 'results.json'}")
    if not args.keep:
        shutil.rmtree(work / "abagen_data", ignore_errors=True)
        shutil.rmtree(raw, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
