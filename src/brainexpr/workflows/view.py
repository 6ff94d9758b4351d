"""Workflow ``view``: browse the gene maps of an output folder in a web page (NiiVue)."""

from __future__ import annotations

import logging
import webbrowser
from pathlib import Path

from ..datasets import load_atlas, load_brain_mask, load_template
from ..errors import InputError
from ..outputs import check_output_folder, output_folder
from ..utils import progress
from ..viewer.assets import niivue_bundle_path
from ..viewer.maps import find_maps, select_maps
from ..viewer.server import LOOPBACK, make_server
from ..viewer.site import ViewerSite, build_site
from ..transcriptome.query import atlas_maps, is_atlas_store
from ..docstrings import fill_doc

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def prepare_viewer(output_dir, *, model: str | None = None, resolution: int | None = None,
                   genes=None, data_dir=None) -> ViewerSite:
    """Find the maps of an output folder and build the viewer's files (lazily).

    Parameters
    ----------
    output_dir : path-like
        Folder written by ``brainexpr run`` (searched recursively for maps named
        ``gene-<SYMBOL>_model-<name>_res-<1mm|2mm>_space-MNI152_<expr|std>.nii.gz``), or
        a gene-atlas store (``brainexpr atlas build``): every gene, read when picked.
    model : str, optional
        Show only this model's maps (default: all; the page offers a model menu).
    resolution : {1, 2}, optional
        Map resolution in mm (default: 2 mm when present, else 1 mm).
    genes : sequence of str, optional
        Show only these genes (default: all).
    data_dir : path-like, optional
        Reference data folder (MNI152 template, brain mask, DK-83 atlas).

    Returns
    -------
    ViewerSite
    """
    niivue_bundle_path()  # fail early, with the install command, when the viewer bundle is absent
    if is_atlas_store(output_dir):  # a gene atlas: every gene, each map read when picked
        maps = select_maps(atlas_maps(output_dir), model=model, resolution=resolution,
                           genes=genes)
    else:
        maps = select_maps(find_maps(output_dir), model=model, resolution=resolution, genes=genes)
    atlas = load_atlas("dk83", data_dir=data_dir)
    logger.info("viewer: %d genes (%d gene-model pairs) at %d mm", maps["gene"].nunique(), len(maps),
                int(maps["resolution"].iloc[0]))
    return build_site(maps, template=load_template(data_dir), brain_mask=load_brain_mask(data_dir),
                      atlas=atlas.image, regions=atlas.regions,
                      title=f"brainexpr maps: {Path(output_dir).resolve().name}")


def write_static_viewer(site: ViewerSite, out, overwrite: bool = False) -> Path:
    """Write the viewer's files into the folder ``out`` (see :mod:`brainexpr.outputs`).

    Returns
    -------
    Path
        ``out/index.html``, which opens from ``file://`` without a server.
    """
    out = Path(out)
    files = site.files()
    with output_folder(out, "view", overwrite) as stage:
        stage.chmod(0o755)  # a web page folder: readable like the rest of the outputs
        (stage / "data").mkdir()
        for relpath in progress(files, desc="viewer files", unit="file"):
            (stage / relpath).write_bytes(site.read(relpath))
    logger.info("wrote the viewer (%d files) to %s", len(files), out)
    return out / "index.html"


@fill_doc
def view_maps(output_dir, *, static: bool = False, out=None, model: str | None = None,
              resolution: int | None = None, genes=None, port: int = DEFAULT_PORT,
              open_browser: bool = True, overwrite: bool = False, data_dir=None):
    """Browse the gene maps of an output folder: serve a local page or write a static one.

    The page shows orthogonal slices over the MNI152 template with a colour bar, a gene
    menu, a switch between expression and its uncertainty (the ``_std`` maps), and reads the
    value and the Desikan-Killiany region at a clicked point.

    Parameters
    ----------
    output_dir : path-like
        Folder written by ``brainexpr run``.
    static : bool
        Write a static page (opens from disk, no server) instead of serving one.
    out : path-like, optional
        Folder of the static page (default: ``<output_dir>/viewer``).
    model, resolution, genes, data_dir
        See :func:`prepare_viewer`.
    port : int
        Port on 127.0.0.1 when serving (0 picks a free one).
    open_browser : bool
        Open the page in the default web browser.
    %(overwrite)s

    Returns
    -------
    Path or None
        The static page's ``index.html``; None after a served session ends (Ctrl-C).
    """
    store = is_atlas_store(output_dir)
    if static and store and not genes:
        raise InputError(f"a static page of the atlas {output_dir} would hold every gene's map; "
                         "pass --genes, or serve it (without --static) to load maps on demand")
    if out is not None:
        out = Path(out)
    elif store:  # never write inside a store
        out = Path(output_dir).with_name(Path(output_dir).name + ".viewer")
    else:
        out = Path(output_dir) / "viewer"
    if static:
        check_output_folder(out, "view", overwrite)
    site = prepare_viewer(output_dir, model=model, resolution=resolution, genes=genes,
                          data_dir=data_dir)
    if static:
        index = write_static_viewer(site, out, overwrite=overwrite)
        if open_browser:
            webbrowser.open(index.resolve().as_uri())
        return index
    server = make_server(site, LOOPBACK, port)
    url = f"http://{LOOPBACK}:{server.server_address[1]}/"
    logger.info("serving the map viewer at %s (Ctrl-C stops it)", url)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("viewer stopped")
    finally:
        server.server_close()
    return None
