"""The fsaverage5 cortical surface: meshes, MNI152 positions of vertices, DK-68 parcels.

The fsaverage5 meshes (10,242 vertices per hemisphere: pial, white, sphere) ship inside
the nilearn wheel (``nilearn/datasets/data/fsaverage5/``), so nothing is downloaded. The
Desikan-Killiany labels of the vertices come from the ``fsa5_{lh,rh}_aparc.annot`` files
of the regional dataset (``regional-dk83``).

fsaverage coordinates are FreeSurfer's MNI305 space. They are mapped to MNI152 with the
affine :data:`MNI305_TO_MNI152` that FreeSurfer documents (wiki page
"CoordinateSystems", item 8a, derived from ``$FREESURFER_HOME/average/mni152.register.dat``;
it moves points by about 2-4 mm). Wu et al. (2018, Hum. Brain Mapp. 39:3793) give a
non-linear registration that is more accurate near the cortex; the affine is the
documented linear one, and the benchmark in BENCHMARKS.md ("Maps on fsaverage5") measures
what the mapping gives against phantom truth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import nibabel as nib
import numpy as np
import pandas as pd

from ..datasets.validate import check_choice
from ..docstrings import fill_doc
from ..errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "HEMISPHERES", "MESHES", "MNI305_TO_MNI152", "Mesh", "dk_vertex_labels", "fsaverage5_mesh",
    "fsaverage_to_mni152", "midthickness_mni152", "parcellate_vertices", "sphere_centroids",
]

#: Hemisphere code -> (nilearn file suffix, FreeSurfer prefix, GIFTI structure name).
HEMISPHERES = {"L": ("left", "lh", "CortexLeft"), "R": ("right", "rh", "CortexRight")}

#: Mesh kinds available offline (file stem in nilearn's fsaverage5 folder).
MESHES = ("pial", "white", "sphere", "infl")

#: FreeSurfer's MNI305 (fsaverage) -> MNI152 affine, RAS mm (wiki "CoordinateSystems" 8a).
MNI305_TO_MNI152 = np.array([
    [0.9975, -0.0073, 0.0176, -0.0429],
    [0.0146, 1.0009, -0.0024, 1.5496],
    [-0.0130, -0.0093, 0.9971, 1.1840],
    [0.0, 0.0, 0.0, 1.0],
])

#: Vertices per hemisphere of fsaverage5.
N_VERTICES = 10242

_ANNOT = "regional/imaging-transcriptomics-1.1.0/fsa5_{side}_aparc.annot"


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh.

    Attributes
    ----------
    coords : (n_vertices, 3) float array, mm (fsaverage / MNI305 space; the sphere has
        radius 100)
    faces : (n_faces, 3) int array, vertex indices
    """

    coords: np.ndarray
    faces: np.ndarray


def _check_hemi(hemi: str) -> str:
    check_choice(hemi, HEMISPHERES, "hemi")
    return hemi


@lru_cache(maxsize=8)
def fsaverage5_mesh(kind: str, hemi: str) -> Mesh:
    """One fsaverage5 mesh from the nilearn wheel.

    Parameters
    ----------
    kind : {"pial", "white", "sphere", "infl"}
    hemi : {"L", "R"}

    Returns
    -------
    Mesh
    """
    check_choice(kind, MESHES, "kind")
    name = f"{kind}_{HEMISPHERES[_check_hemi(hemi)][0]}.gii.gz"
    path = resources.files("nilearn.datasets").joinpath("data", "fsaverage5", name)
    if not path.is_file():
        raise InputError(f"the fsaverage5 mesh {name} is not in the installed nilearn "
                         f"({path}); reinstall nilearn>=0.11")
    image = nib.load(str(path))
    coords = np.asarray(image.darrays[0].data, dtype=np.float64)
    faces = np.asarray(image.darrays[1].data, dtype=np.int64)
    coords.setflags(write=False)
    faces.setflags(write=False)
    return Mesh(coords=coords, faces=faces)


def fsaverage_to_mni152(coords) -> np.ndarray:
    """Map fsaverage (MNI305) coordinates to MNI152 with :data:`MNI305_TO_MNI152`.

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI305

    Returns
    -------
    (n, 3) array, mm, MNI152
    """
    coords = np.asarray(coords, dtype=float)
    return coords @ MNI305_TO_MNI152[:3, :3].T + MNI305_TO_MNI152[:3, 3]


def midthickness_mni152(hemi: str) -> np.ndarray:
    """MNI152 position of each vertex's mid-thickness point (mean of pial and white).

    Returns
    -------
    (10242, 3) float array, mm, MNI152
    """
    mid = 0.5 * (fsaverage5_mesh("pial", hemi).coords + fsaverage5_mesh("white", hemi).coords)
    return fsaverage_to_mni152(mid)


@lru_cache(maxsize=4)
def _vertex_labels(hemi: str, data_dir) -> np.ndarray:
    from ..datasets.fetch import fetch_file

    side = HEMISPHERES[_check_hemi(hemi)][1]
    path = fetch_file(_ANNOT.format(side=side), data_dir=data_dir)
    labels, _, names = nib.freesurfer.read_annot(str(path))
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    if labels.shape != (N_VERTICES,):
        raise InputError(f"{path} has {labels.shape[0]} vertices; fsaverage5 has {N_VERTICES}")
    from ..datasets.regions import region_table

    cortex = region_table()
    keys = np.array([f"{hemi}_{n}" if f"{hemi}_{n}" in cortex.index else "" for n in names]
                    + [""], dtype=object)
    out = keys[np.where(labels >= 0, labels, len(names))]   # -1 (no label) -> ""
    out.setflags(write=False)
    return out


def dk_vertex_labels(hemi: str, data_dir=None) -> np.ndarray:
    """Desikan-Killiany region key of every fsaverage5 vertex of one hemisphere.

    Returns
    -------
    (10242,) object array
        Region keys (``"L_bankssts"``...); ``""`` on the medial wall (``unknown``) and
        for ``corpuscallosum``, which are not DK-68 regions.
    """
    return _vertex_labels(hemi, None if data_dir is None else str(data_dir))


@fill_doc
def parcellate_vertices(values: dict, data_dir=None) -> pd.DataFrame:
    """Average vertex maps within the 68 cortical Desikan-Killiany regions.

    Parameters
    ----------
    values : dict
        Hemisphere code (``"L"``, ``"R"``) -> (10242,) or (10242, n_maps) array of vertex
        values (NaN vertices are ignored), or a DataFrame whose columns name the maps.
    %(data_dir)s

    Returns
    -------
    pandas.DataFrame
        (n_regions, n_maps) unweighted vertex means, index = region keys of the given
        hemispheres in the order of :func:`brainexpr.datasets.region_table`.
    """
    from ..datasets.regions import region_table

    blocks, columns = [], None
    for hemi, data in values.items():
        labels = dk_vertex_labels(hemi, data_dir)
        if isinstance(data, pd.DataFrame):
            columns = list(data.columns)
        array = np.asarray(data, dtype=float)
        array = array[:, None] if array.ndim == 1 else array
        if array.shape[0] != N_VERTICES:
            raise InputError(f"hemisphere {hemi}: {array.shape[0]} values; fsaverage5 has "
                             f"{N_VERTICES} vertices per hemisphere")
        frame = pd.DataFrame(array).groupby(labels).mean()
        blocks.append(frame.drop(index="", errors="ignore"))
    table = pd.concat(blocks)
    order = [k for k in region_table().index if k in table.index]
    table = table.loc[order]
    table.index.name = "region"
    if columns is not None:
        table.columns = columns
    return table


@fill_doc
def sphere_centroids(regions, data_dir=None) -> pd.DataFrame:
    """Centroids of cortical Desikan-Killiany regions on the fsaverage5 sphere.

    The centroid is the mean of the region's sphere vertices projected back onto the unit
    sphere (the input of spin tests, Alexander-Bloch et al. 2018).

    Parameters
    ----------
    regions : sequence of str
        Cortical region keys (``"L_bankssts"``...).
    %(data_dir)s

    Returns
    -------
    pandas.DataFrame
        (n_regions, 4): ``x, y, z`` (unit sphere, fsaverage orientation) and
        ``hemisphere`` (L/R), index = ``regions``.

    Raises
    ------
    InputError
        Naming the regions that are not cortical (subcortical regions cannot be rotated).
    """
    regions = list(regions)
    rows = {}
    for hemi in HEMISPHERES:
        labels = dk_vertex_labels(hemi, data_dir)
        sphere = fsaverage5_mesh("sphere", hemi).coords
        frame = pd.DataFrame(sphere).groupby(labels).mean().drop(index="", errors="ignore")
        for key, xyz in frame.iterrows():
            vector = xyz.to_numpy(float)
            rows[key] = (*(vector / np.linalg.norm(vector)), hemi)
    missing = [r for r in regions if r not in rows]
    if missing:
        raise InputError(
            f"{len(missing)} regions are not on the cortical surface ({', '.join(missing[:6])}"
            f"{' ...' if len(missing) > 6 else ''}): spin nulls rotate the cortex only; use "
            "region_set='cortex' (--region-set cortex) or another null method"
        )
    return pd.DataFrame([rows[r] for r in regions], index=pd.Index(regions, name="region"),
                        columns=["x", "y", "z", "hemisphere"])
