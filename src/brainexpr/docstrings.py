"""Shared parameter documentation, written once and filled into docstrings.

A docstring names an entry of :data:`docdict` as ``%(name)s`` on a line of its own, at
the indentation of the other parameters; :func:`fill_doc` replaces it with the entry,
every line indented to match (as nilearn's ``fill_doc`` does). Only ``%(name)s`` of a
known entry is replaced, so other ``%`` signs in a docstring stay as they are.

Examples
--------
>>> @fill_doc
... def load(data_dir=None):
...     '''Load something.
...
...     Parameters
...     ----------
...     %(data_dir)s
...     '''
>>> "BRAINEXPR_DATA" in load.__doc__
True
"""

from __future__ import annotations

import re

#: Parameter name -> its numpydoc entry (first line at column 0, the rest indented by 4).
docdict = {
    "data_dir": """data_dir : path-like, optional
    Reference data folder; default: the first of ``$BRAINEXPR_DATA``, ``../shared/data``
    beside the checkout and ``~/brainexpr-data`` (:func:`brainexpr.config.get_data_dir`).""",
    "overwrite": """overwrite : bool
    Write into a folder holding other files (:mod:`brainexpr.outputs`: only brainexpr's
    own files there are replaced).""",
    "figures": """figures : bool
    Write the figures.""",
    "fitted_model": """model : fitted estimator
    An INR or any estimator with ``predict(coords, tissue, genes)`` (see
    :mod:`brainexpr.models.base`).""",
    "model_genes": """genes : sequence of str, optional
    Genes to map (default: every gene of the model).""",
    "std_kind": """std_kind : {"population", "sample"}
    What the ``_std`` maps of a kriging model describe: the uncertainty of the predicted
    population map (default), or the spread of a new donor's sample around it (donor
    deviation and measurement noise added;
    :meth:`brainexpr.models.kriging.DonorKrigingRegressor.predict_std`). An INR ensemble's
    recalibrated SD is the same for both.""",
    "sample_data": """coords : (n_sites, 3) array, mm, MNI152
values : (n_sites, n_genes) array or DataFrame
    Values at the sites (NaN = not measured); a DataFrame names the genes.
tissue : (n_sites,) array in {1, -1, 0}, optional
    Tissue class (grey, white, other); default 0.""",
    "regional_data": """atlas_image : nibabel.Nifti1Image
    Integer parcel labels in MNI152 space (0 = background).
values : (n_regions, n_genes) DataFrame
    Regional values (NaN = missing); rows are regions.
regions : pandas.DataFrame, optional
    Atlas table with column ``id``, indexed like ``values``. Without it the index of
    ``values`` must hold the parcel ids.
tissue_image : nibabel.Nifti1Image, optional
    Tissue class per voxel (1 grey, -1 white, 0 other) on the atlas grid; default 0.""",
}

_FIELD = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s[ \t]*$", re.M)


def fill_doc(obj):
    """Replace the ``%(name)s`` lines of ``obj.__doc__`` by the entries of :data:`docdict`.

    Parameters
    ----------
    obj : function or class

    Returns
    -------
    obj
        The same object, its docstring filled.

    Raises
    ------
    KeyError
        For a ``%(name)s`` line that names no entry of :data:`docdict` (at import time).
    """
    def entry(match):
        indent = match["indent"]
        text = docdict[match["name"]]
        return "\n".join(indent + line if line else line for line in text.splitlines())

    if obj.__doc__:
        obj.__doc__ = _FIELD.sub(entry, obj.__doc__)
    return obj
