"""The gene atlas (``brainexpr atlas``): model choice, build, queries, local vs cluster.

Parts (``--parts``, all by default), each written to ``OUT/bench_atlas.md`` and ``.json``:

``choice``
    Which model fits all genes: leave-parcels-out on a random sample of genes of the
    DK-83 table (5 random folds of parcels, and 5 folds of whole lobes per hemisphere):
    parcel kriging (the default settings) against the neighbour-average and global-mean
    baselines (``benchmarks/parcel_scoring.py``); ``--choice-methods inr`` adds the
    factorized INR of ``brainexpr run`` (one member, 1-D gene axis), ``inr-profile`` the
    same INR whose gene network reads each gene's ``--choice-gene-components`` leading
    principal components of its profile over the fold's training parcels
    (``gene_embedding="profile-pca"``).
``build``
    ``brainexpr atlas build`` of every gene of the regional table at 2 mm (fit, held-out
    accuracy, Dask build, DK-83 parcellation) as a subprocess: wall time, peak memory of
    the process tree, store size, float16 rounding error; then reads of one gene's map and
    of all genes at 10 voxels through :func:`brainexpr.open_atlas`.
``chunks``
    The first 2,048 genes of that store copied into stores chunked (256 x 16,384),
    (64 x 4,096) and (32 x 2,048): time to read one gene's map and all these genes at 10
    voxels (I/O and decompression only).
``baseline``
    The per-gene ``brainexpr predict`` loop with the same model (the store's model file):
    ``--n-baseline`` genes timed one command each, extrapolated to every gene.
``match``
    ``brainexpr atlas match`` of the ADNI AD tau map (regional CSV) against every gene
    with 1,000 variogram surrogates; ``atlas parcellate --atlas brainnetome246`` (computed
    from the chunks, not cached).
``samples``
    The sample-level path at full size: a synthetic raw AHBA download (58,692 probes, the
    real sample counts of the 6 donors; written once into ``OUT/ahba-raw`` and reused),
    ``brainexpr ahba`` on it (no cache: every CSV parsed), then ``brainexpr atlas build
    --source`` that folder with the default sample model (donor kriging) at 2 mm, each as
    a subprocess: wall time, peak memory of the process tree, store size, the fit and
    block times recorded in the store; ``--samples-genes N`` builds N genes drawn at random
    and extrapolates the block time linearly to every gene of the folder
    (``--samples-fit-all`` then also times the fit of every gene). One block evaluated
    with shared cross-covariances against the model's own ``predict``. Then the
    per-gene ``brainexpr predict`` loop with the store's model file (``--n-baseline``
    genes), extrapolated to every gene.
``cluster``
    A 1 mm build of a gene subset (``--cluster-genes``, the AD set) on Dask's local
    threaded scheduler and on a 2-worker ``distributed.LocalCluster`` (processes, 1 thread
    each): time, peak memory, and whether the stores are identical; extrapolated to every
    gene from the measured cost of the voxel basis and of the blocks.

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_atlas.py \\
        --out-dir bench_atlas
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

PARTS = ("choice", "build", "chunks", "baseline", "match", "cluster", "samples")


class PeakMemory:
    """Peak resident memory (bytes) of a process and all its descendants, polled."""

    def __init__(self, pid: int | None = None, interval: float = 0.2):
        import psutil

        self.process = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        import psutil

        while not self._stop.is_set():
            total = 0
            try:
                for proc in [self.process, *self.process.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _run(command: list[str], log: Path) -> tuple[float, float]:
    """Run a command; returns (seconds, peak GB of its process tree)."""
    start = time.perf_counter()
    with open(log, "a") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        with PeakMemory(process.pid) as memory:
            code = process.wait()
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(command)}; see {log}")
    return time.perf_counter() - start, memory.peak / 1e9


def _du(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e9


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def part_choice(args, results):
    from brainexpr.datasets import load_atlas, load_regional_expression
    import parcel_scoring as P
    from brainexpr.workflows.models import _tissue_image_for

    table = load_regional_expression()
    rng = np.random.default_rng(args.random_state)
    genes = sorted(rng.choice(table.columns, size=args.n_choice_genes, replace=False))
    values = table[genes]
    atlas = load_atlas("dk83")
    setup = P.parcel_setup(atlas.image, atlas.regions, values.index,
                           _tissue_image_for(atlas.image), max_voxels=500)
    methods = args.choice_methods.split(",")
    variants = {"inr-profile": ("inr", {"gene_embedding": "profile-pca",
                                        "n_gene_components": args.choice_gene_components})}
    out = {}
    schemes = {"random": None, "lobe": P.lobe_groups(atlas.regions.loc[values.index])}
    for name, groups in ((n, schemes[n]) for n in args.choice_folds.split(",")):
        folds = P.parcel_folds(values.index, 5, groups=groups, random_state=args.random_state)
        predictions, seconds = P.leave_parcels_out(values, setup, folds, methods,
                                                   method_params=variants)
        summary = P.summarise_scores(predictions, values, seconds=seconds)
        out[name] = summary.round(4).to_dict(orient="index")
    results.setdefault("choice", {}).update(
        {"n_genes": len(genes), "seed": args.random_state, "load": _load()})
    if "inr-profile" in methods:
        results["choice"]["inr_profile_components"] = args.choice_gene_components
    for scheme, table in out.items():
        results["choice"].setdefault("folds", {}).setdefault(scheme, {}).update(table)


def part_build(args, results):
    store = args.out_dir / "atlas-2mm.zarr"
    command = [sys.executable, "-m", "brainexpr", "atlas", "build", "--out", str(store)]
    seconds, peak = _run(command, args.out_dir / "build.log")
    import brainexpr

    atlas = brainexpr.open_atlas(store)
    start = time.perf_counter()
    one = atlas.expression.sel(gene="APOE").values
    gene_read = time.perf_counter() - start
    start = time.perf_counter()
    few = atlas.expression.isel(voxel=np.linspace(0, atlas.sizes["voxel"] - 1, 10).astype(int)).values
    voxel_read = time.perf_counter() - start
    accuracy = atlas.accuracy_r.values.astype(float)
    results["build"] = {
        "n_genes": int(atlas.sizes["gene"]), "n_voxels": int(atlas.sizes["voxel"]),
        "seconds": seconds, "peak_gb": peak, "store_gb": _du(store),
        "chunks": atlas.attrs["chunks"], "dtype": atlas.attrs["dtype"],
        "float16_max_abs_error": atlas.attrs["float16_max_abs_error"],
        "rank": atlas.attrs["model"]["rank"],
        "read_one_gene_s": gene_read, "read_10_voxels_all_genes_s": voxel_read,
        "shapes": [list(one.shape), list(few.shape)],
        "heldout_r_median": float(np.nanmedian(accuracy)),
        "heldout_r_mean": float(np.nanmean(accuracy)), "load": _load()}


def _reads(array, n_genes: int) -> dict:
    """Seconds to read one gene's map and all genes at 10 voxels spread over the brain."""
    start = time.perf_counter()
    array[n_genes // 2, :]
    one = time.perf_counter() - start
    voxels = np.linspace(0, array.shape[1] - 1, 10).astype(int)
    start = time.perf_counter()
    array.get_orthogonal_selection((slice(0, n_genes), voxels))
    few = time.perf_counter() - start
    return {"read_one_gene_s": one, "read_10_voxels_s": few}


def part_chunks(args, results):
    """Reads of the same values under other chunk shapes: the first ``--n-chunk-genes``
    genes of the 2 mm store copied into stores with other chunks (I/O only)."""
    import zarr

    source = zarr.open_group(str(args.out_dir / "atlas-2mm.zarr"), mode="r")["expression"]
    n_genes = args.n_chunk_genes
    values = source[:n_genes, :]
    rows = {}
    for genes, voxels in ((256, 16384), (64, 4096), (32, 2048)):
        path = args.out_dir / f"chunks-{genes}x{voxels}.zarr"
        array = zarr.create_array(str(path), shape=values.shape, chunks=(genes, voxels),
                                  dtype=values.dtype, overwrite=True)
        array[...] = values
        rows[f"{genes}x{voxels}"] = dict(_reads(zarr.open_array(str(path), mode="r"), n_genes),
                                         n_files=sum(1 for f in path.rglob("*") if f.is_file()),
                                         store_gb=_du(path))
    results["chunks"] = {"n_genes": n_genes, "layouts": rows, "load": _load()}


def _predict_loop(store: Path, genes, n_genes: int, out_dir: Path, log: Path) -> dict:
    """The baseline: one ``brainexpr predict`` per gene with the store's model file, timed
    for ``genes`` and extrapolated to ``n_genes``."""
    times = []
    for gene in genes:
        seconds, peak = _run([sys.executable, "-m", "brainexpr", "predict", "--model",
                              str(store / "model.pt"), "--genes", gene, "--out-dir",
                              str(out_dir / f"predict-{gene}")], log)
        times.append(seconds)
    return {"genes": list(genes), "seconds": times, "mean_s": float(np.mean(times)),
            "extrapolated_all_genes_h": float(np.mean(times)) * n_genes / 3600, "load": _load()}


def part_baseline(args, results):
    genes = ["APOE", "MAPT", "TREM2", "APP", "PSEN1"][: args.n_baseline]
    n_genes = results.get("build", {}).get("n_genes", 15633)
    results["baseline"] = _predict_loop(args.out_dir / "atlas-2mm.zarr", genes, n_genes,
                                        args.out_dir, args.out_dir / "baseline.log")


def _genes_arguments(genes, per_argument: int = 2000) -> list[str]:
    """``--genes A,B,... --genes ...``: one argument stays far below the kernel's 128 kB."""
    out = []
    for start in range(0, len(genes), per_argument):
        out += ["--genes", ",".join(genes[start:start + per_argument])]
    return out


def part_samples(args, results):
    from brainexpr.ahba import load_processed
    from brainexpr.ahba.synthetic import write_synthetic_download

    log = args.out_dir / "samples.log"
    raw, processed = args.out_dir / "ahba-raw", args.out_dir / "ahba"
    out = {}
    if not (raw / "complete.json").is_file():
        start = time.perf_counter()
        write_synthetic_download(raw, full_size=True, random_state=args.random_state)
        (raw / "complete.json").write_text(json.dumps({"full_size": True,
                                                       "random_state": args.random_state}))
        out["generate_s"] = time.perf_counter() - start
    out["raw_csv_gb"] = sum(f.stat().st_size for f in raw.rglob("*.csv")) / 1e9
    out["ahba_s"], out["ahba_peak_gb"] = _run(
        [sys.executable, "-m", "brainexpr", "ahba", str(raw), "--out", str(processed),
         "--no-cache"], log)
    folder = load_processed(processed)
    every = [str(g) for g in folder.genes.index]
    out["n_samples"], out["n_genes_source"] = int(len(folder.samples)), len(every)
    store = args.out_dir / "atlas-samples.zarr"
    if store.exists():
        import shutil

        shutil.rmtree(store)                   # this script's own store of an earlier run
    command = [sys.executable, "-m", "brainexpr", "atlas", "build", "--source", str(processed),
               "--out", str(store)]
    genes = every
    if args.samples_genes and args.samples_genes < len(every):
        rng = np.random.default_rng(args.random_state)
        genes = sorted(rng.choice(every, size=args.samples_genes, replace=False))
        command += _genes_arguments(genes)
    out["build_s"], out["build_peak_gb"] = _run(command, log)
    import brainexpr

    atlas = brainexpr.open_atlas(store)
    attrs = atlas.attrs
    fraction = len(genes) / len(every)
    accuracy = atlas.accuracy_r.values.astype(float)
    out.update({
        "n_genes_built": int(atlas.sizes["gene"]), "n_voxels": int(atlas.sizes["voxel"]),
        "model": attrs["model"]["name"], "fit_s": attrs["model"]["fit_seconds"],
        "blocks_s": attrs["block_seconds_last_run"], "store_gb": _du(store),
        "chunks": attrs["chunks"], "float16_max_abs_error": attrs["float16_max_abs_error"],
        "accuracy_meaning": attrs["accuracy"],
        "trust_r_median": float(np.nanmedian(accuracy)), "load": _load()})
    if fraction < 1:
        # blocks scale with the genes; the fit is taken as linear too (an upper bound: its
        # covariance factorisations do not depend on the number of genes)
        scale = 1 / fraction
        out["extrapolated_all_genes"] = {
            "fit_s_at_most": out["fit_s"] * scale, "blocks_s": out["blocks_s"] * scale,
            "build_s_at_most": out["build_s"] * scale, "store_gb": out["store_gb"] * scale}
    if args.samples_fit_all and fraction < 1:    # the fit alone at full size, measured
        out["fit_all_s"], out["fit_all_peak_gb"] = _run(
            [sys.executable, "-m", "brainexpr", "fit", "--source", str(processed), "--out",
             str(args.out_dir / "fit-all.pt"), *_genes_arguments(every)], log)
    out["block"] = _donor_kriging_block(store, *attrs["chunks"])
    out["baseline"] = _predict_loop(store, genes[: args.n_baseline], len(every), args.out_dir,
                                    log)
    results["samples"] = out


def _donor_kriging_block(store: Path, n_genes: int, n_voxels: int) -> dict:
    """One block of the store's donor kriging: the evaluator with cross-covariances shared
    by all gene blocks of a voxel block (``LowRankDonorKriging``) against the model's own
    ``predict`` (``ModelEvaluator``, which recomputes them for every gene block)."""
    from brainexpr.maps.dense import voxel_grid
    from brainexpr.models.registry import load_model
    from brainexpr.transcriptome import build as B

    model = load_model(store / "model.pt")
    grid = voxel_grid("brain", 2)
    voxels = slice(grid.n_voxels // 2, grid.n_voxels // 2 + n_voxels)
    coords, tissue = grid.coords[voxels], grid.tissue[voxels]
    genes = slice(0, min(n_genes, model.n_genes_))
    timings, values = {}, {}
    for name, evaluator in (("shared", B.make_evaluator(model)), ("predict", B.ModelEvaluator(model))):
        start = time.perf_counter()
        prepared = evaluator.prepare(coords, tissue)
        timings[f"{name}_prepare_s"] = time.perf_counter() - start
        start = time.perf_counter()
        values[name] = evaluator.evaluate(prepared, genes)[0]
        timings[f"{name}_evaluate_s"] = time.perf_counter() - start
    return {"genes": genes.stop, "voxels": n_voxels, **timings,
            "max_abs_difference": float(np.abs(values["shared"] - values["predict"]).max()),
            "load": _load()}


def part_match(args, results):
    from brainexpr.datasets import load_pathology_map

    store = args.out_dir / "atlas-2mm.zarr"
    tau = args.out_dir / "ad_tau.csv"
    load_pathology_map("tau", "ad").to_csv(tau)
    seconds, peak = _run([sys.executable, "-m", "brainexpr", "atlas", "match", str(store),
                          str(tau), "--n-surrogates", "1000", "--out-dir",
                          str(args.out_dir / "match-tau")], args.out_dir / "match.log")
    top = pd.read_csv(args.out_dir / "match-tau" / "matches.tsv", sep="\t", index_col=0)
    parcellate_s, parcellate_gb = _run(
        [sys.executable, "-m", "brainexpr", "atlas", "parcellate", str(store), "--atlas",
         "brainnetome246", "--out", str(args.out_dir / "bn246.csv")],
        args.out_dir / "match.log")
    results["match"] = {"seconds": seconds, "peak_gb": peak, "n_surrogates": 1000,
                        "top5": top.head(5)[["pearson_r", "pearson_p_spatial",
                                             "pearson_q_spatial"]].round(4).to_dict("index"),
                        "n_q_spatial_below_0.05": int((top["pearson_q_spatial"] < 0.05).sum()),
                        "parcellate_bn246_s": parcellate_s, "parcellate_bn246_gb": parcellate_gb,
                        "load": _load()}


def part_cluster(args, results):
    from distributed import LocalCluster

    from brainexpr.transcriptome import build as B
    from brainexpr.transcriptome.store import load_atlas

    common = dict(gene_set=args.cluster_genes, resolution=1, accuracy=False)
    timings = {}
    stores = {}
    for name in ("local", "cluster"):
        store = args.out_dir / f"atlas-1mm-{name}.zarr"
        stores[name] = store
        if name == "local":
            with PeakMemory() as memory:
                start = time.perf_counter()
                B.build_atlas(out=store, **common)
                timings[name] = (time.perf_counter() - start, memory.peak / 1e9)
        else:
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster, PeakMemory() as memory:
                start = time.perf_counter()
                B.build_atlas(out=store, scheduler=cluster.scheduler_address, **common)
                timings[name] = (time.perf_counter() - start, memory.peak / 1e9)
    local, cluster = (load_atlas(stores[n]) for n in ("local", "cluster"))
    step = local.root["expression"].chunks[1]
    identical = all(np.array_equal(local.root["expression"][:, v:v + step],
                                   cluster.root["expression"][:, v:v + step], equal_nan=True)
                    for v in range(0, local.grid.n_voxels, step))
    # cost model for the extrapolation: voxel basis (independent of the genes) + blocks
    model = B.make_evaluator(__import__("brainexpr.models.registry", fromlist=["x"])
                             .load_model(stores["local"] / "model.pt"))
    grid = local.grid
    sample = slice(0, 16384)
    start = time.perf_counter()
    basis = model.prepare(grid.coords[sample], grid.tissue[sample])
    basis_s_per_voxel = (time.perf_counter() - start) / basis.shape[0]
    full = __import__("brainexpr.models.registry", fromlist=["x"]).load_model(
        args.out_dir / "atlas-2mm.zarr" / "model.pt") if (args.out_dir / "atlas-2mm.zarr").exists() else None
    block_s = None
    if full is not None:
        evaluator = B.make_evaluator(full)
        start = time.perf_counter()
        evaluator.evaluate(basis, slice(0, 256))[0].astype(np.float16)
        block_s = time.perf_counter() - start
    n_vox = grid.n_voxels
    extrapolated = None
    if block_s is not None:
        blocks = -(-15633 // 256) * -(-n_vox // 16384)
        extrapolated = (basis_s_per_voxel * n_vox + block_s * blocks) / 2 / 60   # 2 cores
    results["cluster"] = {"genes": len(local.genes), "n_voxels": n_vox,
                          "local_s": timings["local"][0], "local_peak_gb": timings["local"][1],
                          "cluster_s": timings["cluster"][0],
                          "cluster_peak_gb": timings["cluster"][1], "identical": bool(identical),
                          "basis_s_per_1e5_voxels": basis_s_per_voxel * 1e5,
                          "block_256x16384_s": block_s,
                          "extrapolated_all_genes_1mm_min_2_cores": extrapolated,
                          "store_gb_subset": _du(stores["local"]), "load": _load()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("bench_atlas"))
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--n-choice-genes", type=int, default=300)
    parser.add_argument("--choice-methods", default="parcel-kriging,neighbour-average,global-mean",
                        help="methods of the choice part; 'inr' adds the factorized INR with "
                             "the settings of `brainexpr run` (one member), 'inr-profile' the "
                             "same INR with the profile-PCA gene embedding")
    parser.add_argument("--choice-gene-components", type=int, default=16,
                        help="components of the profile-PCA gene embedding of 'inr-profile'")
    parser.add_argument("--choice-folds", default="random,lobe")
    parser.add_argument("--n-baseline", type=int, default=3)
    parser.add_argument("--n-chunk-genes", type=int, default=2048)
    parser.add_argument("--cluster-genes", default="ad")
    parser.add_argument("--samples-genes", type=int, default=0,
                        help="part samples: build this many genes drawn at random and "
                             "extrapolate (default 0: every gene of the download)")
    parser.add_argument("--samples-fit-all", action="store_true",
                        help="part samples with --samples-genes: also time the fit of every "
                             "gene (`brainexpr fit`, the fit `atlas build` makes)")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "bench_atlas.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version()}
    for part in args.parts.split(","):
        start = time.perf_counter()
        globals()[f"part_{part}"](args, results)
        results.setdefault("wall", {})[part] = time.perf_counter() - start
        path.write_text(json.dumps(results, indent=1, default=str))
        print(f"{part} done in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
