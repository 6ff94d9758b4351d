"""The raw Allen Human Brain Atlas microarray pipeline (abagen's standard workflow).

One module per stage, in processing order::

    io.py         read and validate the raw per-donor files (cached as float32 .npy);
                  write and read the processed output folder
    probes.py     reannotation, intensity-based filtering, probe selection
    samples.py    ontology classes, corrected coordinates, mirroring, matching to regions
    normalize.py  scaled robust sigmoid and the other normalisations
    aggregate.py  regional tables per donor and across donors, missing regions,
                  differential stability of genes
    report.py     the Methods paragraph for exactly the options used
    pipeline.py   :func:`process_ahba`, the whole workflow with abagen's options
    synthetic.py  small (and full-size) donors in the exact raw format, for tests and
                  benchmarks
    download.py   resumable, verified download from the Allen Institute
"""

from .io import ProcessedAHBA, find_donor_dirs, load_donor, load_processed, write_processed
from .pipeline import DEFAULTS, check_options, process_ahba

__all__ = ["DEFAULTS", "ProcessedAHBA", "check_options", "find_donor_dirs", "load_donor",
           "load_processed", "process_ahba", "write_processed"]
