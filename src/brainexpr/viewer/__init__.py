"""Interactive map viewer: browse the gene maps of an output folder in a web page (NiiVue).

* :mod:`.maps`: find maps by their BIDS-like names (:func:`parse_map_filename`).
* :mod:`.site`: the page, the NiiVue bundle and one data script per volume.
* :mod:`.server`: serve them on 127.0.0.1; :mod:`.assets`: install the NiiVue bundle.
* :mod:`.headless`: drive headless Chromium (tests, documentation screenshots).

The user-facing entry point is :func:`brainexpr.workflows.view.view_maps` (``brainexpr view``).
"""

from .maps import MAP_NAME_SCHEME, MapName, find_maps, parse_map_filename, select_maps

__all__ = ["MAP_NAME_SCHEME", "MapName", "find_maps", "parse_map_filename", "select_maps"]
