"""Tests of brainexpr.reporting.run_report: the Methods text follows the fitted model."""

from brainexpr.reporting.run_report import maps_methods


def test_maps_methods_inr_mentions_ensemble_only_for_ensembles():
    single = maps_methods("factorized", n_ensemble=1)
    ensemble = maps_methods("factorized", n_ensemble=3)
    assert "implicit neural representation" in single
    assert "standard deviation" not in single
    assert "standard deviation over independently seeded fits" in ensemble


def test_maps_methods_donor_kriging_does_not_claim_an_inr():
    text = maps_methods("donor-kriging")
    assert "kriging" in text and "neural" not in text
    assert text.endswith(".")


def test_maps_methods_unknown_model_is_named():
    assert "my-model" in maps_methods("my-model")
