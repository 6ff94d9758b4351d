"""Benchmark of maps on fsaverage5: direct evaluation at the vertices vs the volume route.

On a phantom with known truth (:mod:`brainexpr.evaluation.phantom`), for the default model
of sample data (donor kriging, fitted on the phantom's noisy samples at the 3,702 sites):

1. truth at the vertices: the phantom's population field at each vertex's mid-thickness
   point (fsaverage5, mapped to MNI152 with FreeSurfer's MNI305 -> MNI152 affine);
2. **direct**: the model evaluated at those points
   (:func:`brainexpr.maps.surface.predict_surface`, what ``predict --space fsaverage5``
   writes);
3. **volume route**: the model's 1 mm map on the brain mask (what ``predict --resolution 1``
   writes, 0 outside the mask) sampled with nilearn's ``vol_to_surf`` between the pial and
   white surfaces (:func:`brainexpr.maps.surface.sample_volume_on_surface`); and the same
   for the truth's own 1 mm volume, which isolates the error of the sampling itself. To
   save time the 1 mm map is predicted only on the voxels that ``vol_to_surf`` can read
   (the 8 neighbours of points every 1/20 of the way from white to pial, a superset of its
   sample points); the rest of the volume stays 0, which does not change what it samples;
4. DK-68 regional means: from the direct vertex maps (surface parcellation with the
   fsaverage5 annotations, :func:`brainexpr.atlas.surface.parcellate_vertices`) and from the
   volume (:func:`brainexpr.maps.parcellate_model` on the 1 mm DK-83 atlas), each against
   the phantom's true regional means (DK-83 atlas voxels) and against each other.

Vertex metrics (Pearson r, RMSE in truth-SD units) are per gene over the cortical vertices of
both hemispheres (medial wall excluded); the table gives the mean over genes.

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/surface_maps.py \
        [--n-genes 8] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import pandas as pd


def vertex_scores(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """Mean over genes of Pearson r and RMSE / truth SD; arrays (n_vertices, n_genes)."""
    r = [np.corrcoef(predicted[:, g], truth[:, g])[0, 1] for g in range(truth.shape[1])]
    rmse = np.sqrt(np.mean((predicted - truth) ** 2, axis=0)) / truth.std(axis=0)
    return {"r": float(np.mean(r)), "rmse_sd": float(np.mean(rmse))}


def regional_scores(estimate: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Mean over genes of Pearson r across regions; frames (regions, genes)."""
    shared = estimate.index.intersection(truth.index)
    r = [np.corrcoef(estimate.loc[shared, g], truth.loc[shared, g])[0, 1]
         for g in estimate.columns]
    return {"r": float(np.mean(r)), "n_regions": int(len(shared))}


def surface_shell(grid, hemis=("L", "R"), steps: int = 21):
    """The voxels of ``grid`` that linear sampling between white and pial can touch."""
    from dataclasses import replace

    from brainexpr.atlas.surface import fsaverage5_mesh, fsaverage_to_mni152

    inverse = np.linalg.inv(grid.affine)
    touched = []
    for hemi in hemis:
        pial = fsaverage_to_mni152(fsaverage5_mesh("pial", hemi).coords)
        white = fsaverage_to_mni152(fsaverage5_mesh("white", hemi).coords)
        for t in np.linspace(0.0, 1.0, steps):
            voxel = np.floor((white + t * (pial - white)) @ inverse[:3, :3].T + inverse[:3, 3])
            for offset in np.ndindex(2, 2, 2):
                index = (voxel + offset).astype(np.int64)
                touched.append(np.ravel_multi_index(index.T, grid.shape, mode="clip"))
    keep = np.isin(np.ravel_multi_index(grid.ijk.T, grid.shape), np.unique(np.concatenate(touched)))
    return replace(grid, ijk=grid.ijk[keep], coords=grid.coords[keep], tissue=grid.tissue[keep])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-genes", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    import nibabel as nib

    from brainexpr.analysis.association import select_regions
    from brainexpr.atlas.surface import dk_vertex_labels, midthickness_mni152, parcellate_vertices
    from brainexpr.atlas.tissue import tissue_class_at
    from brainexpr.datasets import load_atlas
    from brainexpr.evaluation.phantom import make_phantom
    from brainexpr.maps import parcellate_model, predict_dense, voxel_grid
    from brainexpr.maps.surface import predict_surface, sample_volume_on_surface
    from brainexpr.models.kriging import DonorKrigingRegressor

    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                          f"numpy {np.__version__}", "n_genes": args.n_genes}
    phantom = make_phantom(args.n_genes, random_state=args.seed)
    genes = phantom.gene_names
    samples = phantom.samples
    tissue = samples["tissue_class"].to_numpy()
    tick = time.perf_counter()
    model = DonorKrigingRegressor(random_state=args.seed).fit(
        phantom.coords, phantom.values, tissue=tissue, donors=samples["donor"].to_numpy())
    results["fit_s"] = time.perf_counter() - tick

    hemis = ("L", "R")
    cortex = {h: dk_vertex_labels(h) != "" for h in hemis}
    truth = np.vstack([phantom.truth(midthickness_mni152(h))[cortex[h]] for h in hemis])

    tick = time.perf_counter()
    direct = predict_surface(model, genes)
    results["direct_s"] = time.perf_counter() - tick
    direct_vertices = np.vstack([direct[h][0].T[cortex[h]] for h in hemis])

    tick = time.perf_counter()
    grid = surface_shell(voxel_grid("brain", 1), hemis)
    results["volume_voxels_predicted"] = int(grid.n_voxels)
    mean, _ = predict_dense(model, grid, genes)
    volume = nib.Nifti1Image(
        np.stack([grid.volume(mean[i]) for i in range(len(genes))], axis=-1), grid.affine)
    results["volume_predict_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    sampled = {h: sample_volume_on_surface(volume, h) for h in hemis}
    results["vol_to_surf_s"] = time.perf_counter() - tick
    volume_vertices = np.vstack([sampled[h][cortex[h]] for h in hemis])
    truth_volume = phantom.truth_volume(resolution=1)
    truth_sampled = np.vstack([sample_volume_on_surface(truth_volume, h)[cortex[h]]
                               for h in hemis])

    results["vertices"] = {
        "n_vertices": int(truth.shape[0]),
        "direct (model at mid-thickness)": vertex_scores(direct_vertices, truth),
        "vol_to_surf of the model's 1 mm map": vertex_scores(volume_vertices, truth),
        "vol_to_surf of the truth's 1 mm volume": vertex_scores(truth_sampled, truth),
        "direct vs vol_to_surf of the model (agreement)": vertex_scores(volume_vertices,
                                                                        direct_vertices),
    }

    keys = select_regions("cortex")
    regional_truth = phantom.regional_truth().loc[keys]
    surface_means = parcellate_vertices(
        {h: pd.DataFrame(direct[h][0].T, columns=genes) for h in hemis})
    atlas = load_atlas("dk83")
    tick = time.perf_counter()
    volume_means, _ = parcellate_model(model, atlas.image, atlas.regions.loc[keys], genes)
    results["volume_parcellate_s"] = time.perf_counter() - tick
    results["dk68"] = {
        "surface parcellation vs truth": regional_scores(surface_means, regional_truth),
        "volume parcellation vs truth": regional_scores(volume_means, regional_truth),
        "surface vs volume parcellation": regional_scores(surface_means, volume_means),
    }

    print(f"phantom, {args.n_genes} genes, donor kriging; {results['vertices']['n_vertices']} "
          "cortical vertices")
    print("| route | r vs truth | RMSE / truth SD |")
    print("|---|---|---|")
    for name, row in results["vertices"].items():
        if name != "n_vertices":
            print(f"| {name} | {row['r']:.3f} | {row['rmse_sd']:.3f} |")
    print("| DK-68 regional means | r |")
    print("|---|---|")
    for name, row in results["dk68"].items():
        print(f"| {name} | {row['r']:.3f} |")
    print({k: round(v, 2) for k, v in results.items() if k.endswith("_s")})
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
