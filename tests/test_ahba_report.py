"""The Methods paragraph states exactly the options used."""

from brainexpr.ahba.pipeline import DEFAULTS
from brainexpr.ahba.report import donor_demographics, methods_report


def test_demographics_of_the_six_donors(data_dir):
    demo = donor_demographics([9861, 10021, 12876, 14380, 15496, 15697], data_dir=data_dir)
    assert demo["n_donors"] == 6 and demo["n_female"] == 1
    assert (demo["min"], demo["max"]) == (24, 57)
    assert round(demo["mean"], 1) == 42.5 and round(demo["std"], 1) == 13.4


def test_default_report(data_dir):
    text = methods_report(DEFAULTS, [9861, 10021, 12876, 14380, 15496, 15697], n_probes=30534,
                          n_genes=15633, n_regions=83, atlas_name="the DK atlas",
                          counts={"matched": 3000, "total": 3600}, data_dir=data_dir)
    assert "6 post-mortem brains (1 female, ages 24-57, 42.5 +/- 13.4 years)" in text
    assert "fewer than 50% of samples across donors were discarded, leaving 30,534 probes" in text
    assert "differential stability [Hawrylycz2015]" in text
    assert "within 2 mm" in text and "3,000 of 3,600 samples" in text
    assert "83 rows (regions) and 15,633 columns (genes)" in text
    assert "mirrored" not in text and "interpolat" not in text.lower()
    assert "[Hawrylycz2015] Hawrylycz M et al. (2015)" in text       # cited -> listed
    assert "[RomeroGarcia2018]" not in text                          # not cited -> not listed


def test_report_follows_every_option(data_dir):
    options = dict(DEFAULTS, lr_mirror="bidirectional", missing="interpolate", tolerance=0,
                   probe_selection="max_intensity", donor_probes="common", sample_norm=None,
                   gene_norm="zscore", norm_structures=True, norm_matched=False,
                   region_agg="samples", agg_metric="median", corrected_mni=False,
                   reannotated=False, ibf_threshold=0.25, sim_threshold=3)
    text = methods_report(options, [9861, 10021], n_interpolated=12, data_dir=data_dir)
    assert "2 post-mortem brains (0 female" in text
    for phrase in ("mirrored across the midline in both directions", "(12 donor-region pairs)",
                   "only when they lay inside it", "highest mean expression",
                   "the probe chosen most often", "z-scoring", "separately for samples of "
                   "different structural classes", "All samples took part in the normalisation",
                   "across all donors together", "summarised by their median",
                   "kept the Allen Institute's annotation", "fewer than 25% of samples",
                   "more than 3 standard deviations"):
        assert phrase in text, phrase
    assert "non-linear registration" not in text and "across genes" not in text
