"""Where every figure of the package gets pyplot and is saved: one backend choice, one writer.

* :func:`pyplot`: ``matplotlib.pyplot`` on the non-interactive Agg backend unless the user
  chose another non-GUI or interactive backend (so nothing opens a window, and a script
  that shows figures still can).
* :func:`save_figure`: a figure written atomically in one or several formats beside each
  other (``fig.png`` and ``fig.svg``), then closed.
"""

from __future__ import annotations

from pathlib import Path

from ..datasets.validate import check_choices
from ..utils import atomic_path

#: Formats :func:`save_figure` writes.
FIGURE_FORMATS = ("png", "svg", "pdf")
#: Backends that need no display (kept when already selected).
_NON_GUI_BACKENDS = ("agg", "pdf", "svg", "ps", "cairo")


def pyplot():
    """``matplotlib.pyplot``, switched to Agg unless a non-GUI or interactive backend is set."""
    import matplotlib

    if matplotlib.get_backend().lower() not in _NON_GUI_BACKENDS \
            and not matplotlib.is_interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path, formats=("png", "svg"), dpi: int = 200, tight: bool = True,
                close: bool = True) -> list[Path]:
    """Save a figure in several formats beside each other, atomically.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : path-like
        File name; its suffix is replaced by each format (``maps/APOE.png``, ``maps/APOE.svg``).
    formats : sequence of {"png", "svg", "pdf"}
    dpi : int
        Resolution of raster formats.
    tight : bool
        Crop the figure to what is drawn (``bbox_inches="tight"``).
    close : bool
        Close the figure afterwards.

    Returns
    -------
    list of Path
    """
    check_choices(formats, FIGURE_FORMATS, "formats")
    path = Path(path)
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        with atomic_path(target) as tmp:
            figure.savefig(tmp, format=fmt, dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
        written.append(target)
    if close:
        pyplot().close(figure)
    return written
