"""Region averages of dense model maps, and their agreement with a regional table.

Any fitted model works (an INR or any estimator with ``predict(coords, tissue, genes)``).
Averages are computed directly from the voxels of the atlas (one chunked pass, no volume
written). The comparison with a regional table (e.g. abagen's DK-83 table that a model
was fitted on) reports per gene:

``r_voxel``
    Pearson r between the continuous map and the painted table over the voxels inside
    both the brain mask and a parcel (never over background zeros);
``r_voxel_regional``
    the same for the painted *regional averages* of the map (the seed paper's
    "INR + spectral embedding + regional averaged", Table 1);
``r_regional``
    Pearson r between regional averages and the table over regions (unweighted);
``mse_voxel``
    mean squared difference over the same voxels as ``r_voxel``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import sparse

from ..atlas.space import check_mni_image, mask_coordinates, sample_image
from ..docstrings import fill_doc
from ..errors import InputError
from ..utils import progress
from .dense import model_genes, predict_prepared, prepare_points

logger = logging.getLogger(__name__)


def _weighted_pearson(x, y, w):
    w = w / w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    cov = (w * (x - mx) * (y - my)).sum()
    return float(cov / np.sqrt((w * (x - mx) ** 2).sum() * (w * (y - my) ** 2).sum()))


@fill_doc
def parcellate_model(model, atlas_image, regions: pd.DataFrame, genes=None, table=None,
                     brain_mask=None, chunk_size: int = 2 ** 18, data_dir=None):
    """Average a model's dense prediction within each parcel of an atlas.

    Parameters
    ----------
    %(fitted_model)s
    atlas_image : nibabel.Nifti1Image
        Integer parcel ids (0 = background), MNI152.
    regions : pandas.DataFrame
        Atlas table with column ``id``; its index names the rows of the result.
    %(model_genes)s
    table : pandas.DataFrame, optional
        A regional table (regions x genes, indexed like ``regions``) to compare with;
        genes absent from it are averaged but not compared.
    brain_mask : nibabel.Nifti1Image, optional
        Voxels used by the voxel-wise comparison (default: the FSL MNI152 brain mask).
    chunk_size : int
        Voxels per prediction call.
    %(data_dir)s

    Returns
    -------
    means : pandas.DataFrame
        (n_regions, n_genes) regional averages of the map.
    comparison : pandas.DataFrame or None
        Per gene: ``r_voxel``, ``r_voxel_regional``, ``r_regional``, ``mse_voxel``,
        ``n_voxels``, ``n_regions`` (only when ``table`` is given).
    """
    from ..atlas.tissue import tissue_class_at

    atlas_image = check_mni_image(atlas_image, "atlas", ndim=(3,))
    genes = model_genes(model) if genes is None else list(genes)
    ids = regions["id"].to_numpy(np.int64)
    labels = np.asarray(atlas_image.dataobj).astype(np.int64)
    lookup = np.full(max(int(labels.max()), int(ids.max())) + 1, -1, dtype=np.int64)
    lookup[ids] = np.arange(len(ids))
    inside = np.zeros(labels.shape, np.uint8)
    inside[lookup[labels] >= 0] = 1
    inside[labels == 0] = 0
    import nibabel as nib

    ijk, coords = mask_coordinates(nib.Nifti1Image(inside, atlas_image.affine), threshold=0)
    if len(ijk) == 0:
        raise InputError("the atlas has no voxels with the ids of the region table")
    row = lookup[labels[ijk[:, 0], ijk[:, 1], ijk[:, 2]]]
    counts = np.bincount(row, minlength=len(ids))
    if (counts == 0).any():
        logger.warning("%d parcel(s) have no voxels: %s", int((counts == 0).sum()),
                       ", ".join(map(str, regions.index[counts == 0][:10])))
    tissue = tissue_class_at(coords, data_dir=data_dir)
    points = prepare_points(model, coords, tissue)

    compare = table is not None
    if compare:
        compared = [g for g in genes if g in table.columns]
        if not compared:
            raise InputError("the comparison table has none of the genes to parcellate")
        # genes absent from the table get NaN references and no comparison row
        reference = table.reindex(index=regions.index, columns=genes).to_numpy(dtype=float)
        if brain_mask is None:
            from ..datasets import load_brain_mask

            brain_mask = load_brain_mask(data_dir)
        in_brain = sample_image(brain_mask, coords, fill=0) > 0
        sums = np.zeros((6, len(genes)))   # n, sx, sy, sxx, syy, sxy
        squared = np.zeros(len(genes))
        brain_counts = np.zeros(len(ids))
    totals = np.zeros((len(ids), len(genes)))
    for start in progress(range(0, len(points), chunk_size), desc="parcellate",
                          total=-(-len(points) // chunk_size), unit="chunk"):
        stop = start + chunk_size
        prediction = predict_prepared(model, points[start:stop], genes).astype(np.float64)
        part = row[start:stop]
        onehot = sparse.csr_matrix((np.ones(len(part)), (part, np.arange(len(part)))),
                                   shape=(len(ids), len(part)))
        totals += onehot @ prediction
        if compare:
            keep = in_brain[start:stop]
            x = prediction[keep]
            y = reference[part[keep]]
            valid = np.isfinite(y)
            x0, y0 = np.where(valid, x, 0.0), np.where(valid, y, 0.0)
            sums += np.stack([valid.sum(0), x0.sum(0), y0.sum(0), (x0 ** 2).sum(0),
                              (y0 ** 2).sum(0), (x0 * y0).sum(0)])
            squared += ((x0 - y0) ** 2).sum(0)
            brain_counts += np.bincount(part[keep], minlength=len(ids))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = totals / counts[:, None]
    means = pd.DataFrame(means, index=regions.index, columns=genes)
    if not compare:
        return means, None
    n, sx, sy, sxx, syy, sxy = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        r_voxel = (n * sxy - sx * sy) / np.sqrt((n * sxx - sx ** 2) * (n * syy - sy ** 2))
        mse = squared / n
    rows = []
    for index, gene in enumerate(genes):
        if gene not in compared:
            continue
        x, y = means[gene].to_numpy(), reference[:, index]
        ok = np.isfinite(x) & np.isfinite(y)
        weights = brain_counts[ok]
        rows.append({
            "gene": gene,
            "r_voxel": float(r_voxel[index]),
            "r_voxel_regional": _weighted_pearson(x[ok], y[ok], weights) if weights.sum() else np.nan,
            "r_regional": float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 2 else np.nan,
            "mse_voxel": float(mse[index]),
            "n_voxels": int(n[index]),
            "n_regions": int(ok.sum()),
        })
    comparison = pd.DataFrame(rows).set_index("gene")
    logger.info("agreement with the regional table over %d genes: median r_voxel %.3f, "
                "r_regional %.3f", len(genes), comparison["r_voxel"].median(),
                comparison["r_regional"].median())
    return means, comparison
