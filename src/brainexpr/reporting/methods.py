"""The Methods paragraph of a run: what was done with exactly the options used, with citations.

Sentences carry citation keys as ``[@key]``; :func:`build_methods` numbers them in order
of first use (``[1]``, ``[2]``...) and lists the references. Keys are those of
:data:`REFERENCES` or ``dataset:<name>`` for a dataset of the registry
(:func:`brainexpr.datasets.get_dataset`), whose citation is taken from there. Each report
section may add its own sentence (``ReportSection.methods``), so the paragraph describes
the steps that ran and only those.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, field
from importlib import metadata

from .._version import __version__
from ..errors import InputError

#: Citations of methods and software, by key.
REFERENCES = {
    "yu2025": "Yu X, Torok J, Pandya S, Pal S, Singh V, Raj A. Brain-wide interpolation and "
              "conditioning of gene expression in the human brain using implicit neural "
              "representations.",
    "hawrylycz2012": "Hawrylycz MJ et al. (2012) An anatomically comprehensive atlas of the adult "
                     "human brain transcriptome. Nature 489:391-399.",
    "siren": "Sitzmann V, Martel JNP, Bergman AW, Lindell DB, Wetzstein G (2020) Implicit neural "
             "representations with periodic activation functions. NeurIPS 33. arXiv:2006.09661.",
    "nerf": "Mildenhall B, Srinivasan PP, Tancik M, Barron JT, Ramamoorthi R, Ng R (2020) NeRF: "
            "representing scenes as neural radiance fields for view synthesis. ECCV. arXiv:2003.08934.",
    "ng2001": "Ng AY, Jordan MI, Weiss Y (2001) On spectral clustering: analysis and an algorithm. "
              "Advances in Neural Information Processing Systems 14.",
    "abagen": "Markello RD, Arnatkeviciute A, Poline JB, Fulcher BD, Fornito A, Misic B (2021) "
              "Standardizing workflows in imaging transcriptomics with the abagen toolbox. "
              "eLife 10:e72129.",
    "arnatkeviciute2019": "Arnatkeviciute A, Fulcher BD, Fornito A (2019) A practical guide to "
                          "linking brain-wide gene expression and neuroimaging data. "
                          "NeuroImage 189:353-367.",
    "desikan2006": "Desikan RS et al. (2006) An automated labeling system for subdividing the human "
                   "cerebral cortex on MRI scans into gyral based regions of interest. "
                   "NeuroImage 31:968-980.",
    "alexander-bloch2018": "Alexander-Bloch AF et al. (2018) On testing for spatial correspondence "
                           "between maps of human brain structure and function. "
                           "NeuroImage 178:540-551.",
    "burt2020": "Burt JB, Helmer M, Shinn M, Anticevic A, Murray JD (2020) Generative modeling of "
                "brain maps with spatial autocorrelation. NeuroImage 220:117038.",
    "markello2022": "Markello RD et al. (2022) neuromaps: structural and functional interpretation "
                    "of brain maps. Nature Methods 19:1472-1479.",
    "kingma2014": "Kingma DP, Welling M (2014) Auto-encoding variational Bayes. ICLR. "
                  "arXiv:1312.6114.",
    "nilearn": "Abraham A et al. (2014) Machine learning for neuroimaging with scikit-learn. "
               "Frontiers in Neuroinformatics 8:14.",
    "pytorch": "Paszke A et al. (2019) PyTorch: an imperative style, high-performance deep "
               "learning library. NeurIPS 32.",
    "scikit-learn": "Pedregosa F et al. (2011) Scikit-learn: machine learning in Python. "
                    "Journal of Machine Learning Research 12:2825-2830.",
}

#: Packages whose versions the report lists (distribution names).
DEFAULT_PACKAGES = ("brainexpr", "numpy", "scipy", "pandas", "nibabel", "nilearn", "scikit-learn",
                    "torch", "matplotlib")

#: Data sources of the ``source`` option: sentence and datasets it reads.
_SOURCES = {
    "regional": ("Expression data were the Allen Human Brain Atlas [@hawrylycz2012] microarray "
                 "data of six donors, parcellated by abagen [@abagen; @arnatkeviciute2019] into the "
                 "83 regions of the Desikan-Killiany atlas [@desikan2006] (scaled robust sigmoid, "
                 "all donors).", ("regional-dk83",)),
    "samples": ("Expression data were the Allen Human Brain Atlas [@hawrylycz2012] tissue samples "
                "(six donors), processed from the raw microarray files following "
                "[@arnatkeviciute2019; @abagen] and placed at their non-linearly corrected MNI152 "
                "coordinates.", ("ahba-samples", "abagen-samples", "ahba-probes")),
    "celltypes": ("Training values were the fractions of eight cell types estimated from the Allen "
                  "Human Brain Atlas [@hawrylycz2012] microarray data at the 3,702 tissue-sample "
                  "sites.", ("ahba-celltypes", "ahba-samples")),
    "phantom": ("Models were validated on ground-truth phantoms: smooth synthetic expression "
                "fields sampled at the real sites of the Allen Human Brain Atlas tissue samples "
                "[@hawrylycz2012].", ("ahba-samples",)),
}

_CITATION = re.compile(r"\[@([^\]]+)\]")


@dataclass
class Methods:
    """A Methods text with numbered citations.

    Attributes
    ----------
    paragraphs : list of str
        Plain text with citations as ``[n]``.
    references : list of str
        Reference ``n`` is ``references[n - 1]``.
    versions : dict of str -> str
        Package versions (and Python).
    """

    paragraphs: list = field(default_factory=list)
    references: list = field(default_factory=list)
    versions: dict = field(default_factory=dict)

    def text(self) -> str:
        """The Methods as plain text: paragraphs, software versions and references."""
        software = ", ".join(f"{name} {version}" for name, version in self.versions.items())
        parts = [*self.paragraphs, f"Software: {software}."]
        if self.references:
            parts.append("References\n" + "\n".join(
                f"[{i}] {reference}" for i, reference in enumerate(self.references, 1)))
        return "\n\n".join(parts) + "\n"


def package_versions(packages=DEFAULT_PACKAGES) -> dict:
    """Return ``{name: version}`` of Python and installed packages ("not installed" otherwise)."""
    versions = {"Python": platform.python_version()}
    for name in packages:
        if name == "brainexpr":
            versions[name] = __version__
            continue
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def reference_text(key: str) -> str:
    """Return the citation of ``key`` (a :data:`REFERENCES` key or ``dataset:<name>``).

    Raises
    ------
    InputError
        For an unknown key, naming the known ones.
    """
    if key.startswith("dataset:"):
        from ..datasets import get_dataset

        dataset = get_dataset(key.split(":", 1)[1])
        citation = dataset.citation.strip() or dataset.source
        return f"{citation} Data: {dataset.name} ({dataset.source}; licence: {dataset.licence})."
    if key not in REFERENCES:
        raise InputError(f"unknown citation key {key!r}; use one of {', '.join(REFERENCES)} "
                         "or dataset:<registry name>")
    return REFERENCES[key]


def _option(options: dict, *names, default=None):
    for name in names:
        if options.get(name) is not None:
            return options[name]
    return default


def describe_options(options: dict) -> list[str]:
    """Sentences (with ``[@key]`` citations) for the run options that the package knows.

    Recognised keys: ``source`` (regional, samples, celltypes, phantom, or a table path),
    ``genes`` (a list, or the
    name of a gene set), ``model``, ``hidden_layers`` (or ``n_layers``), ``hidden_features``,
    ``learning_rate``, ``n_steps`` (or ``max_steps``), ``n_ensemble``, ``n_frequencies``,
    ``resolution``, ``random_state``. Other keys are listed in the report's options table only.
    """
    sentences = []
    source = _option(options, "source", "data_source")
    if source is not None:
        known = _SOURCES.get(str(source))
        sentences.append(known[0] if known else f"Training values were read from the table {source}.")
    genes = _option(options, "genes", "gene_set")
    if isinstance(genes, (list, tuple)):
        sentences.append(f"{len(genes)} genes were mapped ({', '.join(map(str, genes[:5]))}"
                         f"{', ...' if len(genes) > 5 else ''}).")
    elif genes in ("ad", "ad-genes", None) and "genes" in options:
        sentences.append("The genes were the Alzheimer's-disease risk genes of the reference "
                         "study [@yu2025].")
    elif isinstance(genes, str):
        sentences.append(f"The genes were the gene set '{genes}'.")
    model = _option(options, "model")
    from ..models.registry import MODELS, is_network

    if model is not None and not (str(model) in MODELS and is_network(str(model))):
        sentences.append(f"Expression was interpolated between the samples with the '{model}' "
                         "model of brainexpr (described with the maps).")
    elif model is not None:
        architecture = []
        layers = _option(options, "hidden_layers", "n_layers")
        width = _option(options, "hidden_features", "width")
        if layers is not None and width is not None:
            architecture.append(f"{layers} hidden layers of {width} units")
        frequencies = _option(options, "n_frequencies")
        if frequencies is not None:
            architecture.append(f"a positional encoding of the gene coordinate with {frequencies} "
                                "frequencies [@nerf]")
        details = f" ({'; '.join(architecture)})" if architecture else ""
        sentences.append(
            f"Expression was modelled with an implicit neural representation (model '{model}'): "
            f"a sinusoidal representation network (SIREN) [@siren]{details} that maps MNI152 "
            "coordinates, the tissue class (grey matter 1, white matter -1, other 0) and the "
            "gene's position on a spectral-embedding gene axis [@ng2001] to expression, as in "
            "[@yu2025], implemented in PyTorch [@pytorch].")
    training = []
    steps = _option(options, "n_steps", "steps", "max_steps")
    if steps is not None:
        training.append(f"{steps} optimisation steps")
    rate = _option(options, "learning_rate", "lr")
    if rate is not None:
        shown = f"{rate:g}" if isinstance(rate, (int, float)) else str(rate)
        training.append(f"learning rate {shown}")
    ensemble = _option(options, "n_ensemble")
    if ensemble is not None and ensemble > 1:
        training.append(f"an ensemble of {ensemble} networks whose standard deviation gives the "
                        "uncertainty maps")
    seed = _option(options, "random_state", "seed")
    if seed is not None:
        training.append(f"random seed {seed}")
    if training:
        sentences.append("Training used " + ", ".join(training) + ".")
    resolution = _option(options, "resolution", "resolutions")
    if resolution is not None:
        text = (" and ".join(f"{r} mm" for r in resolution) if isinstance(resolution, (list, tuple))
                else f"{resolution} mm" if isinstance(resolution, (int, float)) else str(resolution))
        sentences.append(f"Dense maps were predicted on the FSL MNI152 grid at {text} "
                         "[@dataset:mni152-fsl].")
    return sentences


def _number_citations(paragraphs: list[str]) -> tuple[list[str], list[str]]:
    order: list[str] = []

    def replace(match):
        numbers = []
        for key in (k.strip().lstrip("@") for k in match.group(1).split(";")):
            if key not in order:
                reference_text(key)  # validates the key
                order.append(key)
            numbers.append(order.index(key) + 1)
        return "[" + ", ".join(map(str, sorted(set(numbers)))) + "]"

    numbered = [_CITATION.sub(replace, paragraph) for paragraph in paragraphs]
    return numbered, [reference_text(key) for key in order]


def build_methods(options: dict | None = None, steps=(), datasets=(), packages=DEFAULT_PACKAGES
                  ) -> Methods:
    """Write the Methods paragraph of a run.

    Parameters
    ----------
    options : dict, optional
        The run's configuration (see :func:`describe_options` for the keys that produce
        sentences).
    steps : sequence of str
        One sentence per step that ran, in order, with ``[@key]`` citations (e.g. the
        ``methods`` of the report sections).
    datasets : sequence of str
        Registry names of every dataset read; each is cited.
    packages : sequence of str
        Packages whose versions are listed.

    Returns
    -------
    Methods
    """
    first = describe_options(dict(options or {}))
    first += [sentence.strip() for sentence in steps if sentence and sentence.strip()]
    paragraphs = [" ".join(first)] if first else []
    if datasets:
        names = ", ".join(f"{name} [@dataset:{name}]" for name in dict.fromkeys(datasets))
        paragraphs.append(f"Data sources: {names}.")
    paragraphs.append("Figures were drawn with nilearn [@nilearn] and matplotlib; analyses used "
                      "NumPy, SciPy, pandas, nibabel and scikit-learn [@scikit-learn].")
    numbered, references = _number_citations(paragraphs)
    return Methods(paragraphs=numbered, references=references, versions=package_versions(packages))
