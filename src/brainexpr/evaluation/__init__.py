"""Evaluation: how right a map is, on data with known truth and on held-out real data.

* :mod:`.phantom`: :func:`make_phantom`, phantom AHBA samples with ground-truth fields.
* :mod:`.protocols`: spatially blocked K-fold with an exclusion buffer,
  leave-one-donor-out, leave-parcels-out, leave-genes-out.
* :mod:`.metrics`: within-brain metrics per gene, regional agreement, differential
  stability, and the reference study's inflated whole-volume R for contrast.
* :mod:`.benchmark`: :func:`run_benchmark`, every method under every protocol.
* :mod:`.parcel_cv`: leave-parcels-out cross-validation of a model fitted to a regional
  table (the held-out accuracy of ``brainexpr atlas build``).
* :mod:`.ablation`: :func:`run_ablation`, the seed paper's Fig. 3 ablations of its INR
  scored on spatially held-out sites.
"""
