"""Tests of the graph-regularised VAE (modules, loss terms, estimator, checkpoints)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from brainexpr.errors import InputError
from brainexpr.models.vae import (LOSS_TERMS, GraphVAE, GraphVAERegressor, graph_product,
                                  member_matmul, select_device, vae_loss_terms)


# --------------------------------------------------------------------------- synthetic data
def planted_problem(n_regions: int = 64, n_genes: int = 200, noise: float = 0.5, seed: int = 0):
    """Regions on a 2-D sheet; three smooth planted programs drive the genes and the target.

    Returns X (regions x genes DataFrame), y (Series), factors (regions x 3), adjacency
    (4-neighbour grid) and contiguous spatial folds (quadrants).
    """
    rng = np.random.default_rng(seed)
    side = int(np.sqrt(n_regions))
    gx, gy = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    gx, gy = gx.ravel() / (side - 1), gy.ravel() / (side - 1)
    factors = np.column_stack([np.sin(np.pi * gx) + gy, np.cos(2 * np.pi * gy) * (gx + 0.3),
                               (gx - 0.5) * (gy - 0.5) * 4])
    factors = (factors - factors.mean(0)) / factors.std(0)
    loadings = rng.normal(size=(3, n_genes))
    values = factors @ loadings + noise * rng.normal(size=(side * side, n_genes))
    regions = [f"r{i:02d}" for i in range(side * side)]
    X = pd.DataFrame(values, index=regions, columns=[f"G{j}" for j in range(n_genes)])
    y = pd.Series(factors[:, 0] - 0.6 * factors[:, 1] + 0.1 * rng.normal(size=side * side),
                  index=regions, name="vulnerability")
    adjacency = np.zeros((side * side, side * side))
    for i in range(side):
        for j in range(side):
            k = i * side + j
            if i + 1 < side:
                adjacency[k, k + side] = adjacency[k + side, k] = 1
            if j + 1 < side:
                adjacency[k, k + 1] = adjacency[k + 1, k] = 1
    folds = np.array([f"{int(a >= 0.5)}{int(b >= 0.5)}" for a, b in zip(gx, gy)])
    return X, y, factors, pd.DataFrame(adjacency, index=regions, columns=regions), folds


@pytest.fixture(scope="module")
def planted():
    return planted_problem()


@pytest.fixture(scope="module")
def fitted(planted):
    X, y, _, adjacency, _ = planted
    return GraphVAERegressor(n_components=3, n_epochs=250, random_state=0).fit(
        X, y, adjacency=adjacency)


def _r2_of_regression(target: np.ndarray, predictors: np.ndarray) -> float:
    design = np.column_stack([predictors, np.ones(len(predictors))])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ coef
    return 1 - residual.var() / target.var()


# --------------------------------------------------------------------------- recovery
def test_latent_programs_recover_planted_factors(planted, fitted):
    X, _, factors, _, _ = planted
    latent = fitted.transform(X)
    assert latent.shape == (len(X), 3)
    for k in range(factors.shape[1]):
        assert _r2_of_regression(factors[:, k], latent) > 0.85, f"factor {k} not recovered"


def test_prediction_beats_chance_under_blocked_cv(planted):
    X, y, _, adjacency, folds = planted
    rng = np.random.default_rng(1)
    shuffled = np.column_stack([rng.permutation(y.to_numpy()) for _ in range(4)])
    targets = np.column_stack([y.to_numpy(), shuffled])
    model = GraphVAERegressor(n_components=3, n_epochs=200, random_state=0)
    predictions = model.cross_validated_predictions(X, targets, folds, adjacency=adjacency)
    assert predictions.shape == targets.shape and np.isfinite(predictions).all()
    r = [np.corrcoef(targets[:, k], predictions[:, k])[0, 1] for k in range(targets.shape[1])]
    assert r[0] > 0.8
    assert max(r[1:]) < 0.5 and r[0] - np.mean(r[1:]) > 0.6


def test_gene_loadings_follow_planted_loadings(planted, fitted):
    X, _, factors, _, _ = planted
    true = np.linalg.lstsq(factors, (X - X.mean()).to_numpy(), rcond=None)[0]   # (3, genes)
    loadings = fitted.gene_loadings()
    assert loadings.shape == (X.shape[1], 3) and list(loadings.index) == list(X.columns)
    # the learned loadings span the planted ones
    for k in range(3):
        assert _r2_of_regression(true[k], loadings.to_numpy()) > 0.75


# --------------------------------------------------------------------------- estimator
def test_loss_terms_are_named_and_weighted(fitted):
    assert list(fitted.loss_terms_.columns) == [*LOSS_TERMS, "total"]
    row = fitted.loss_terms_.iloc[0]
    weights = fitted._weights()
    assert row["total"] == pytest.approx(sum(weights[t] * row[t] for t in LOSS_TERMS))
    assert list(fitted.loss_history_.columns) == [*LOSS_TERMS, "total"]
    assert len(fitted.loss_history_) == fitted.n_epochs
    total = fitted.loss_history_["total"]
    assert total.iloc[-20:].mean() < total.iloc[:5].mean()


def test_graph_weight_makes_programs_smoother(planted):
    X, y, _, adjacency, _ = planted
    terms = [GraphVAERegressor(n_components=3, n_epochs=150, graph_weight=w, random_state=0)
             .fit(X, y, adjacency=adjacency).loss_terms_.iloc[0] for w in (0.0, 5.0)]
    rough, smooth = terms
    assert rough["graph"] > 0
    assert smooth["graph"] < 0.5 * rough["graph"]


def test_fit_is_deterministic_and_seeded(planted):
    X, y, _, adjacency, _ = planted
    first = GraphVAERegressor(n_epochs=40, random_state=3).fit(X, y, adjacency=adjacency)
    second = GraphVAERegressor(n_epochs=40, random_state=3).fit(X, y, adjacency=adjacency)
    other = GraphVAERegressor(n_epochs=40, random_state=4).fit(X, y, adjacency=adjacency)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))
    assert not np.allclose(first.predict(X), other.predict(X))


def test_programs_are_signed_and_ordered(fitted, planted):
    X, *_ = planted
    head = fitted.head_coefficients()
    assert (head > 0).all()
    contribution = (head * fitted.transform(X).std(axis=0)).abs().to_numpy()
    assert (np.diff(contribution) <= 1e-6).all()


def test_targets_train_independent_models(planted):
    X, y, _, adjacency, _ = planted
    rng = np.random.default_rng(0)
    a = np.column_stack([y, rng.normal(size=len(y))])
    b = np.column_stack([y, rng.normal(size=len(y))])
    pa = GraphVAERegressor(n_epochs=60, random_state=0).fit(X, a, adjacency=adjacency).predict(X)
    pb = GraphVAERegressor(n_epochs=60, random_state=0).fit(X, b, adjacency=adjacency).predict(X)
    assert pa.shape == (len(X), 2)
    np.testing.assert_allclose(pa[:, 0], pb[:, 0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(pa[:, 1], pb[:, 1])


def test_predict_matches_genes_by_name(fitted, planted):
    X, *_ = planted
    shuffled = X[X.columns[::-1]]
    np.testing.assert_allclose(fitted.predict(shuffled), fitted.predict(X))


def test_checkpoint_round_trip(fitted, planted, tmp_path):
    X, *_ = planted
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = GraphVAERegressor.load(path)
    np.testing.assert_allclose(loaded.predict(X), fitted.predict(X), rtol=1e-6)
    np.testing.assert_allclose(loaded.transform(X), fitted.transform(X), rtol=1e-6)
    assert loaded.get_params() == fitted.get_params()
    assert list(loaded.feature_names_in_) == list(X.columns)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable brainexpr model file"):
        GraphVAERegressor.load(tmp_path / "junk.pt")


# --------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("change, message", [
    (lambda X, y, A: (X, y.iloc[:-1].to_numpy(), None), "one value per region"),
    (lambda X, y, A: (X, y.rename(index={"r00": "elsewhere"}), None), "no value for 1 region"),
    (lambda X, y, A: (X, y, A.to_numpy()[:-1, :-1]), "build the graph for the same regions"),
    (lambda X, y, A: (X, y, A.drop(index="r03", columns="r03")), "adjacency lacks 1 region"),
    (lambda X, y, A: (X.assign(G0=np.nan), y, None), "missing or infinite"),
    (lambda X, y, A: (X, y * 0, None), "constant"),
    (lambda X, y, A: (X.to_numpy()[:, :, None], y, None), "2-D"),
    (lambda X, y, A: (X, y, -A), "non-negative"),
])
def test_shape_and_region_mismatches_raise(planted, change, message):
    X, y, _, adjacency, _ = planted
    X2, y2, A2 = change(X, y, adjacency)
    with pytest.raises(InputError, match=message):
        GraphVAERegressor(n_epochs=2).fit(X2, y2, adjacency=A2)


def test_predict_with_wrong_genes_raises(fitted, planted):
    X, *_ = planted
    with pytest.raises(InputError, match="lacks 1 gene"):
        fitted.predict(X.drop(columns="G5"))
    with pytest.raises(InputError, match="fitted on 200"):
        fitted.predict(X.to_numpy()[:, :150])


@pytest.mark.parametrize("params, name", [
    ({"beta": -1}, "beta"), ({"laplacian": "random-walk"}, "laplacian"),
    ({"n_components": 0}, "n_components"), ({"random_state": None}, "random_state"),
    ({"n_threads": 0}, "n_threads"),
])
def test_bad_parameters_name_the_parameter(planted, params, name):
    X, y, *_ = planted
    with pytest.raises(InputError, match=name):
        GraphVAERegressor(**params).fit(X, y)


def test_predict_before_fit_raises(planted):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GraphVAERegressor().predict(planted[0])


# --------------------------------------------------------------------------- modules
def test_member_matmul_grouped_equals_per_member():
    torch.manual_seed(0)
    matrices = torch.randn(6, 5, 4)
    shared = torch.randn(7, 5)
    grouped = torch.randn(3, 7, 5)
    expected_shared = torch.stack([shared @ m for m in matrices])
    expected_grouped = torch.stack([grouped[k // 2] @ matrices[k] for k in range(6)])
    torch.testing.assert_close(member_matmul(shared, matrices), expected_shared)
    torch.testing.assert_close(member_matmul(grouped, matrices), expected_grouped)
    per_member = torch.randn(6, 7, 5)
    torch.testing.assert_close(member_matmul(per_member, matrices),
                               torch.stack([per_member[k] @ matrices[k] for k in range(6)]))
    lap = torch.randn(3, 7, 7)
    values = torch.randn(6, 7, 2)
    torch.testing.assert_close(graph_product(lap, values),
                               torch.stack([lap[k // 2] @ values[k] for k in range(6)]))


def test_squared_error_matches_explicit_reconstruction():
    torch.manual_seed(0)
    module = GraphVAE(20, 4, (8,), n_members=6)
    x = torch.randn(3, 15, 20)
    mask = (torch.rand(6, 20) > 0.3).float()
    outputs = module(x, torch.randn(6, 15, 4), mask)
    direct = ((outputs["reconstruction"] - x.repeat_interleave(2, dim=0)) ** 2).sum(-1)
    torch.testing.assert_close(outputs["squared_error"], direct, rtol=1e-4, atol=1e-4)
    assert (outputs["reconstruction"][mask[:, None, :].expand(-1, 15, -1) == 0] == 0).all()


def test_padding_does_not_change_the_loss():
    torch.manual_seed(0)
    module = GraphVAE(5, 2, (4,), n_members=1)
    x = torch.randn(6, 5)
    y = torch.randn(1, 6)
    adjacency = (torch.rand(6, 6) > 0.5).float()
    lap = torch.diag((adjacency + adjacency.T).sum(1)) - (adjacency + adjacency.T)
    plain = vae_loss_terms(module(x), y, lap, n_genes=9)
    padded_module = GraphVAE(7, 2, (4,), n_members=1)
    with torch.no_grad():  # same weights, two extra (zero) inputs and outputs
        for p, q in zip(module.parameters(), padded_module.parameters()):
            q.zero_()
        padded_module.encoder.body[0].weight[:, :5] = module.encoder.body[0].weight
        padded_module.encoder.body[0].bias.copy_(module.encoder.body[0].bias)
        padded_module.encoder.out.weight.copy_(module.encoder.out.weight)
        padded_module.encoder.out.bias.copy_(module.encoder.out.bias)
        padded_module.decoder.linear.weight[..., :5] = module.decoder.linear.weight
        padded_module.decoder.linear.bias[..., :5] = module.decoder.linear.bias
        padded_module.decoder.linear.weight[..., 5:] = 3.0  # masked out below
        padded_module.head.linear.weight.copy_(module.head.linear.weight)
        padded_module.head.linear.bias.copy_(module.head.linear.bias)
    x_pad = torch.zeros(9, 7)
    x_pad[:6, :5] = x
    y_pad = torch.zeros(1, 9)
    y_pad[:, :6] = y
    lap_pad = torch.zeros(9, 9)
    lap_pad[:6, :6] = lap
    region_mask = torch.zeros(1, 9)
    region_mask[:, :6] = 1
    input_mask = torch.zeros(1, 7)
    input_mask[:, :5] = 1
    padded = vae_loss_terms(padded_module(x_pad, None, input_mask), y_pad, lap_pad, n_genes=9,
                            region_mask=region_mask)
    for term in LOSS_TERMS:
        torch.testing.assert_close(padded[term], plain[term], rtol=1e-5, atol=1e-6)


def test_reorder_programs_keeps_the_model():
    torch.manual_seed(0)
    module = GraphVAE(6, 3, (5,), n_members=2)
    x = torch.randn(4, 6)
    before = module(x)
    order = torch.tensor([[2, 0, 1], [1, 2, 0]])
    signs = torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]])
    module.reorder_programs(order, signs)
    after = module(x)
    torch.testing.assert_close(after["prediction"], before["prediction"])
    torch.testing.assert_close(after["reconstruction"], before["reconstruction"])
    expected_mu = (torch.gather(before["mu"], 2, order[:, None, :].expand(-1, 4, -1))
                   * signs[:, None, :])
    torch.testing.assert_close(after["mu"], expected_mu)


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            select_device("cuda")
    with pytest.raises(InputError, match="device must be"):
        select_device("tpu-please")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda_agrees_with_cpu(planted):
    X, y, _, adjacency, _ = planted
    cpu = GraphVAERegressor(n_epochs=100, device="cpu").fit(X, y, adjacency=adjacency)
    gpu = GraphVAERegressor(n_epochs=100, device="cuda").fit(X, y, adjacency=adjacency)
    assert np.corrcoef(cpu.predict(X), gpu.predict(X))[0, 1] > 0.95
