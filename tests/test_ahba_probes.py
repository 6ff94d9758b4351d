"""Probe reannotation, intensity-based filtering and selection on hand-made tiny inputs."""

import numpy as np
import pandas as pd
import pytest

from brainexpr.ahba import probes
from brainexpr.errors import InputError


def _probe_table(names, symbols, entrez=None):
    table = pd.DataFrame({"probe_name": names, "gene_symbol": symbols,
                          "entrez_id": entrez if entrez is not None else np.arange(len(names)) + 1},
                         index=pd.Index(np.arange(len(names)) + 100, name="probe_id"))
    return table


def test_reannotation_replaces_genes_and_drops_unknown_probes():
    allen = pd.DataFrame({"probe_name": ["A_1", "A_2", "A_3", "A_4"],
                          "gene_symbol": ["OLD1", "OLD2", "OLD3", "OLD4"],
                          "entrez_id": [1, 2, 3, 4]},
                         index=pd.Index([40, 10, 30, 20], name="probe_id"))
    reannot = pd.DataFrame({"probe_name": ["A_1", "A_2", "A_4", "A_9"],
                            "gene_symbol": ["NEW1", "NEW2", "NEW4", "NEW9"],
                            "entrez_id": [11.0, 22.0, np.nan, 99.0]})
    out = probes.reannotate_probes(allen, reannotation=reannot)
    # A_3 absent from the reannotation, A_4 without Entrez id, A_9 not on the array
    assert list(out.index) == [10, 40]
    assert list(out["gene_symbol"]) == ["NEW2", "NEW1"]
    assert list(out["entrez_id"]) == [22, 11]


def test_reannotation_table_is_the_real_one(data_dir):
    table = probes.load_reannotation(data_dir)
    assert len(table) == 45892 and int(table["entrez_id"].isna().sum()) == 71
    row = table.set_index("probe_name").loc["CUST_98_PI416379584"]
    assert row["gene_symbol"] == "ZNF883" and int(row["entrez_id"]) == 169834


def test_intensity_filter_pools_samples_across_donors():
    table = _probe_table(["p1", "p2", "p3"], ["G1", "G1", "G2"])
    donor_a = np.array([[1, 1, 0, 0],     # p1: 2 of 4
                        [1, 0, 0, 0],     # p2: 1 of 4
                        [1, 1, 1, 1]], dtype=bool)
    donor_b = np.array([[1, 0],           # p1: 1 of 2 -> 3 / 6 = 0.5 -> kept
                        [0, 1],           # p2: 1 of 2 -> 2 / 6 -> dropped
                        [0, 0]], dtype=bool)  # p3: 4 / 6 -> kept
    kept = probes.filter_probes([donor_a, donor_b], table, threshold=0.5)
    assert list(kept["probe_name"]) == ["p1", "p3"]
    assert list(probes.filter_probes([donor_a, donor_b], table, 0.7)["probe_name"]) == []
    assert len(probes.filter_probes([donor_a, donor_b], table, 0.0)) == 3


def test_intensity_filter_counts_mirrored_samples_twice():
    table = _probe_table(["p1", "p2"], ["G1", "G2"])
    pacall = np.array([[1, 0, 0], [0, 1, 1]], dtype=bool)
    # column 0 used three times (a sample and two copies): p1 3/5, p2 2/5
    signal, used = probes.probe_signal(pacall, columns=[0, 0, 0, 1, 2])
    assert list(signal) == [3, 2] and used == 5
    kept = probes.filter_probes([pacall], table, 0.5, columns=[np.array([0, 0, 0, 1, 2])])
    assert list(kept["probe_name"]) == ["p1"]


def test_regional_means_and_spearman():
    values = np.array([[1.0, 3.0, 5.0, 7.0]])
    means, ids = probes.regional_means(values, [20, 10, 20, 10])
    assert list(ids) == [10, 20]
    np.testing.assert_allclose(means, [[5.0, 3.0]])
    r = probes.rowwise_spearman(np.array([[1, 2, 3, 4.0], [1, 2, 3, 4]]),
                                np.array([[10, 20, 30, 40.0], [4, 3, 2, 1]]))
    np.testing.assert_allclose(r, [1.0, -1.0])


def test_diff_stability_hand_computed():
    # three donors, regions (structure ids) 1..4, one sample per region except donor c
    regions = [np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1]), np.array([1, 1, 2, 3, 4])]
    stable = [np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1]), np.array([0.0, 2, 2, 3, 4])]
    # 'flip' agrees between a and b (regions 1..4 -> 4,3,2,1) and is reversed in c
    flip = [np.array([4.0, 3, 2, 1]), np.array([1.0, 2, 3, 4]), np.array([4.0, 4, 3, 2, 1])]
    expression = [np.vstack([s, f]) for s, f in zip(stable, flip)]
    ds = probes.probe_diff_stability(expression, regions)
    # stable: all three pairs rho = 1; flip: (a,b) = 1, (a,c) = 1, (b,c) = 1
    np.testing.assert_allclose(ds, [1.0, 1.0])
    expression[2] = np.vstack([stable[2], -flip[2]])
    ds = probes.probe_diff_stability(expression, regions)
    np.testing.assert_allclose(ds, [1.0, (1 - 1 - 1) / 3])


def test_diff_stability_selects_the_consistent_probe():
    rng = np.random.default_rng(0)
    regions = [np.repeat(np.arange(6), 3) for _ in range(3)]
    truth = np.linspace(0, 5, 6)
    expression = []
    for r in regions:
        good = truth[r] + rng.normal(0, 0.1, len(r))
        bad = rng.normal(8, 1.0, len(r))       # brighter but without regional pattern
        other = truth[r][::-1] + 3             # second gene, single probe
        expression.append(np.vstack([bad, good, other]))
    table = _probe_table(["bad", "good", "only"], ["G1", "G1", "G2"], entrez=[7, 7, 8])
    sel = probes.collapse_probes(expression, table, "diff_stability", regions=regions)
    assert list(sel.genes.index) == ["G1", "G2"]
    assert list(sel.genes["probe_name"]) == ["good", "only"]
    assert sel.genes.loc["G1", "n_probes"] == 2 and sel.genes.loc["G1", "probe_diff_stability"] > 0.9
    np.testing.assert_allclose(sel.expression[0][:, 0], expression[0][1], rtol=1e-6)
    # the brighter probe wins by intensity
    sel = probes.collapse_probes(expression, table, "max_intensity")
    assert sel.genes.loc["G1", "probe_name"] == "bad"


def test_other_selection_methods_hand_computed():
    table = _probe_table(["p1", "p2", "p3"], ["G", "G", "G"], entrez=[5, 5, 5])
    donor = np.array([[1.0, 2.0, 3.0, 4.0],
                      [1.0, 2.0, 3.0, 9.0],     # highest variance
                      [4.0, 3.0, 2.0, 1.0]])    # anti-correlated to the others
    assert probes.collapse_probes([donor], table, "max_variance").genes["probe_name"].iloc[0] == "p2"
    # mean of (corr + 1) / 2 over each row: p3 = 5 - p1, so r13 = -1 and r23 = -r12;
    # p1: (1 + (r12 + 1) / 2 + 0) / 3 < p2: ((r12 + 1) / 2 + 1 + (1 - r12) / 2) / 3 = 2 / 3
    assert probes.collapse_probes([donor], table, "corr_intensity").genes["probe_name"].iloc[0] == "p2"
    avg = probes.collapse_probes([donor], table, "average")
    np.testing.assert_allclose(avg.expression[0][:, 0], donor.mean(axis=0), rtol=1e-6)
    assert avg.genes["probe_id"].iloc[0] == -1 and avg.genes["n_probes"].iloc[0] == 3
    # two probes: pc_loading keeps the one with larger values (positive loading)
    two = probes.collapse_probes([donor[:2]], table.iloc[:2], "pc_loading")
    assert two.genes["probe_name"].iloc[0] == "p2"


def test_common_donor_probes_takes_the_most_frequent_choice():
    table = _probe_table(["p1", "p2"], ["G", "G"], entrez=[5, 5])
    high_first = np.array([[9.0, 9.5], [1.0, 1.5]])
    high_second = np.array([[1.0, 1.5], [9.0, 9.5]])
    donors = [high_first, high_first, high_second]
    independent = probes.collapse_probes(donors, table, "max_intensity", donor_probes="independent")
    assert [d["G"] for d in independent.donor_probes] == [100, 100, 101]
    common = probes.collapse_probes(donors, table, "max_intensity", donor_probes="common")
    assert common.genes.loc["G", "probe_id"] == 100
    np.testing.assert_allclose(common.expression[2][:, 0], [1.0, 1.5])


def test_bad_options_name_the_parameter():
    table = _probe_table(["p1"], ["G"])
    with pytest.raises(InputError, match="probe_selection must be one of"):
        probes.collapse_probes([np.ones((1, 3))], table, "best")
    with pytest.raises(InputError, match="donor_probes"):
        probes.collapse_probes([np.ones((1, 3))], table, "max_intensity", donor_probes="each")
    with pytest.raises(InputError, match="at least two donors"):
        probes.probe_diff_stability([np.ones((1, 3))], [np.arange(3)])


def test_subset_ranks_equal_rankdata_with_ties_and_nan():
    from scipy.stats import rankdata

    rng = np.random.default_rng(2)
    values = rng.normal(size=(50, 12))
    values[3] = 1.0                       # constant row
    values[4, [1, 5, 7]] = 0.25           # ties
    values[:, 11] = np.nan                # a region without data is never in a subset
    ranker = probes.RowRanker(values)
    for columns in ([0, 1, 2, 5, 7], [1, 3, 4, 5, 6, 7, 8, 9, 10]):
        np.testing.assert_array_equal(ranker.ranks(columns), rankdata(values[:, columns], axis=1))
