"""The viewer as a small set of files: a page, the NiiVue bundle and one data script per volume.

The same files are written to a folder (static page, opens from ``file://``) or served
from memory on 127.0.0.1. Each volume travels as a tiny JavaScript file that stores the
base64 of a ``.nii.gz`` (``data/<key>.js``), because browsers refuse ``fetch`` from
``file://`` pages but do run ``<script>`` files; volumes are loaded only when a gene is
picked. Gene maps are shown with NaN (transparent) outside the FSL MNI152 brain mask and
where they are exactly 0 (the map writer's fill value); every other value is the map's own
value, so a click reads the real number.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2
import nibabel as nib
import numpy as np
import pandas as pd

from .._version import __version__
from ..atlas.space import mni_grid, resample_to_grid
from ..errors import InputError
from .assets import BUNDLE_NAME, NIIVUE_VERSION, niivue_bundle_path
from .maps import display_image, to_gzip_bytes

logger = logging.getLogger(__name__)

#: Colour maps (NiiVue names) of the two kinds of map.
COLORMAPS = {"expr": "viridis", "std": "inferno"}


def _safe_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text)


@dataclass
class ViewerSite:
    """Everything the viewer page needs, built lazily file by file.

    Attributes
    ----------
    maps : pandas.DataFrame
        Rows of :func:`brainexpr.viewer.maps.select_maps` (gene, model, resolution, expr, std).
    template : nibabel.Nifti1Image
        Background (T1) on the maps' grid, uint8.
    atlas : nibabel.Nifti1Image
        Region labels on the maps' grid (0 = none).
    labels : dict of int -> str
        Region name per atlas id.
    brain_mask : (X, Y, Z) bool array
        Voxels shown; others are transparent.
    title : str
    """

    maps: pd.DataFrame
    template: nib.Nifti1Image
    atlas: nib.Nifti1Image
    labels: dict
    brain_mask: np.ndarray
    title: str = "brainexpr map viewer"
    _cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ layout
    def volume_keys(self) -> dict[str, Path | str]:
        """Map data keys to their source (a map path, or ``"template"``/``"atlas"``)."""
        keys = {"template": "template", "atlas": "atlas"}
        for row in self.maps.itertuples():
            for kind in ("expr", "std"):
                path = getattr(row, kind)
                if path is not None and not (isinstance(path, float) and np.isnan(path)):
                    keys[self._map_key(row.gene, row.model, kind)] = (
                        path if hasattr(path, "load") else Path(path))
        return keys

    @staticmethod
    def _map_key(gene: str, model: str, kind: str) -> str:
        return _safe_key(f"gene-{gene}_model-{model}_{kind}")

    def manifest(self) -> dict:
        """The JSON description of the maps that the page reads."""
        entries = []
        for row in self.maps.itertuples():
            has_std = row.std is not None and not (isinstance(row.std, float) and np.isnan(row.std))
            trust = getattr(row, "trust", np.nan)
            meaning = getattr(row, "std_meaning", None)
            entries.append({
                "gene": row.gene, "model": row.model,
                "expr": self._map_key(row.gene, row.model, "expr"),
                "std": self._map_key(row.gene, row.model, "std") if has_std else None,
                "trust": round(float(trust), 3) if trust is not None and np.isfinite(trust) else None,
                "std_meaning": meaning if isinstance(meaning, str) else None,
            })
        resolution = int(self.maps["resolution"].iloc[0])
        inverse = np.linalg.inv(self.template.affine)
        return {
            "title": self.title, "resolution_mm": resolution, "maps": entries,
            "shape": list(self.template.shape[:3]), "inverse_affine": inverse.round(9).tolist(),
            "labels": {str(k): v for k, v in self.labels.items()},
            "colormaps": COLORMAPS, "bundle": BUNDLE_NAME,
            "versions": {"brainexpr": __version__, "niivue": NIIVUE_VERSION},
        }

    def files(self) -> list[str]:
        """Relative paths of every file of the site."""
        return ["index.html", BUNDLE_NAME] + [f"data/{key}.js" for key in self.volume_keys()]

    # ------------------------------------------------------------------ content
    def read(self, relpath: str) -> bytes:
        """Return the bytes of one file of the site.

        Raises
        ------
        KeyError
            For a path that is not part of the site.
        """
        if relpath == "index.html":
            return self.index_html().encode("utf-8")
        if relpath == BUNDLE_NAME:
            return niivue_bundle_path().read_bytes()
        match = re.fullmatch(r"data/(.+)\.js", relpath)
        keys = self.volume_keys()
        if match is None or match.group(1) not in keys:
            raise KeyError(relpath)
        key = match.group(1)
        if key not in self._cache:
            if len(self._cache) >= 16:  # bound the memory of a long viewing session
                self._cache.clear()
            self._cache[key] = self._data_script(key, self._volume_bytes(keys[key]))
        return self._cache[key]

    def _volume_bytes(self, source) -> bytes:
        if source == "template":
            return to_gzip_bytes(self.template)
        if source == "atlas":
            return to_gzip_bytes(self.atlas)
        if hasattr(source, "load"):  # a map read on demand (a gene of an atlas store)
            source = source.load()
        return to_gzip_bytes(display_image(source, self.brain_mask))

    @staticmethod
    def _data_script(key: str, payload: bytes) -> bytes:
        encoded = base64.b64encode(payload).decode("ascii")
        return (f"(window.brainexprData = window.brainexprData || {{}})"
                f"[{json.dumps(key)}] = \"{encoded}\";\n").encode("ascii")

    def index_html(self) -> str:
        """Render the page (manifest, styles and application script inline)."""
        static = resources.files(__package__).joinpath("static")
        environment = jinja2.Environment(autoescape=jinja2.select_autoescape(["html", "j2"]))
        template = environment.from_string(static.joinpath("viewer.html.j2").read_text("utf-8"))
        manifest = json.dumps(self.manifest()).replace("</", "<\\/")
        return template.render(
            title=self.title, manifest=manifest, bundle=BUNDLE_NAME,
            script=static.joinpath("viewer.js").read_text("utf-8"),
            style=static.joinpath("viewer.css").read_text("utf-8"),
            n_genes=self.maps["gene"].nunique(), escape=html.escape,
        )


def _resolution_of(maps: pd.DataFrame) -> int:
    resolutions = maps["resolution"].unique()
    if len(resolutions) != 1:
        raise InputError(f"the viewer shows maps of one resolution at a time, got {sorted(resolutions)} mm")
    return int(resolutions[0])


def build_site(maps: pd.DataFrame, template: nib.Nifti1Image, brain_mask: nib.Nifti1Image,
               atlas: nib.Nifti1Image, regions: pd.DataFrame, title: str = "brainexpr map viewer"
               ) -> ViewerSite:
    """Bring the background, mask and atlas onto the maps' grid and build the site.

    Parameters
    ----------
    maps : pandas.DataFrame
        One resolution; see :func:`brainexpr.viewer.maps.select_maps`.
    template, brain_mask, atlas : nibabel.Nifti1Image
        MNI152 T1, brain mask and region labels (any FSL MNI152 grid).
    regions : pandas.DataFrame
        Atlas table with column ``id``, indexed by region name.
    title : str
    """
    if maps.empty:
        raise InputError("no maps to show")
    resolution = _resolution_of(maps)
    shape, affine = mni_grid(resolution)
    first = maps["expr"].iloc[0]
    first = first.load() if hasattr(first, "load") else nib.load(str(first))
    if tuple(first.shape[:3]) != shape or not np.allclose(first.affine, affine, atol=1e-3):
        raise InputError(f"map {Path(maps['expr'].iloc[0]).name} is not on the FSL MNI152 {resolution} mm "
                         f"grid {shape}; resample it with brainexpr.atlas.resample_to_grid first")
    t1 = np.asarray(resample_to_grid(template, resolution, "linear").dataobj, dtype=np.float32)
    scale = np.percentile(t1[t1 > 0], 99.5) if (t1 > 0).any() else 1.0
    t1 = np.clip(t1 / scale * 255.0, 0, 255).astype(np.uint8)
    mask = np.asarray(resample_to_grid(brain_mask, resolution, "nearest").dataobj) > 0
    labels = np.asarray(resample_to_grid(atlas, resolution, "nearest").dataobj).astype(np.int16)
    names = {int(i): str(name) for name, i in zip(regions.index, regions["id"])}

    def image(data):
        out = nib.Nifti1Image(data, affine)
        out.header.set_qform(affine, code=4)
        out.header.set_sform(affine, code=4)
        return out

    return ViewerSite(maps=maps.reset_index(drop=True), template=image(t1), atlas=image(labels),
                      labels=names, brain_mask=mask, title=title)
