"""Tests of brainexpr.reporting.methods: the Methods paragraph, citations and versions."""

from __future__ import annotations

import re

import numpy as np
import pytest

from brainexpr.datasets import get_dataset
from brainexpr.errors import InputError
from brainexpr.reporting.methods import (REFERENCES, build_methods, describe_options,
                                         package_versions, reference_text)


def test_citations_are_numbered_in_order_of_first_use():
    methods = build_methods(steps=["A [@siren].", "B [@abagen; @siren].", "C [@dataset:adni-pathology]."])
    text = " ".join(methods.paragraphs)
    assert "A [1]." in text and "B [1, 2]." in text and "C [3]." in text
    assert methods.references[0] == REFERENCES["siren"]
    assert methods.references[1] == REFERENCES["abagen"]
    assert get_dataset("adni-pathology").citation.strip() in methods.references[2]
    # every number used in the text has a reference and no reference is unused
    used = {int(n) for group in re.findall(r"\[([\d, ]+)\]", text) for n in group.split(",")}
    assert used == set(range(1, len(methods.references) + 1))


def test_options_produce_sentences_for_exactly_what_was_used():
    options = {"source": "regional", "genes": ["APOE", "TREM2"], "model": "factorized",
               "hidden_layers": 4, "hidden_features": 256, "n_steps": 2000, "learning_rate": 1e-4,
               "n_ensemble": 5, "resolution": [1, 2], "random_state": 7}
    text = " ".join(build_methods(options, datasets=["regional-dk83"]).paragraphs)
    for phrase in ("83 regions of the Desikan-Killiany", "2 genes were mapped (APOE, TREM2)",
                   "4 hidden layers of 256 units", "2000 optimisation steps", "learning rate 0.0001",
                   "ensemble of 5 networks", "random seed 7", "at 1 mm and 2 mm",
                   "Data sources: regional-dk83 ["):
        assert phrase in text, phrase
    phantom = " ".join(describe_options({"source": "phantom"}))
    assert "phantoms" in phantom and "Desikan" not in phantom
    engine = " ".join(describe_options({"source": "celltypes", "n_layers": 3, "hidden_features": 64,
                                        "max_steps": 500}))
    assert "eight cell types" in engine and "500 optimisation steps" in engine
    assert describe_options({}) == []


def test_unknown_keys_raise_and_unknown_sources_are_described():
    with pytest.raises(InputError, match="unknown citation key 'nope'"):
        build_methods(steps=["x [@nope]."])
    assert describe_options({"source": "my_samples.csv"}) == [
        "Training values were read from the table my_samples.csv."]
    with pytest.raises(Exception, match="unknown dataset"):
        reference_text("dataset:not-a-dataset")


def test_versions_and_plain_text():
    versions = package_versions()
    assert versions["numpy"] == np.__version__
    assert versions["Python"].count(".") == 2
    assert package_versions(["surely-not-a-package"])["surely-not-a-package"] == "not installed"
    text = build_methods({"model": "factorized"}).text()
    assert "Software: Python" in text and "\nReferences\n[1] " in text
