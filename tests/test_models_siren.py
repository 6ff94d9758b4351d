"""Tests of the pure network modules (positional encoding, SIREN designs)."""

from __future__ import annotations

import math

import pytest
import torch

from brainexpr.models.encoding import PositionalEncoding, positional_encoding
from brainexpr.models.siren import (BatchedSirenNet, FactorizedSiren, JointSiren, PerGeneSiren,
                                    SirenLayer, SirenNet)


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Every test of this module runs with one torch thread."""


def test_positional_encoding_values_and_shape():
    values = torch.tensor([0.0, 0.25, 1.0])
    encoded = positional_encoding(values, n_frequencies=10)
    assert encoded.shape == (3, 20)
    # interleaved (sin, cos) pairs at frequencies 2^k pi, lowest first
    k = 3
    angle = 2 ** k * math.pi * values
    expected = torch.stack([torch.sin(angle), torch.cos(angle)], 1)
    torch.testing.assert_close(encoded[:, 2 * k:2 * k + 2], expected)
    module = PositionalEncoding(4)
    assert module.dim_out == 8
    assert module(values[:, None]).shape == (3, 8)
    raw = PositionalEncoding(0)                          # Fig. 3 baseline: no encoding
    assert raw.dim_out == 1
    torch.testing.assert_close(raw(values), values[:, None])
    with pytest.raises(ValueError):
        PositionalEncoding(-1)


def test_sitzmann_initialisation_bounds():
    torch.manual_seed(0)
    first = SirenLayer(4, 256, omega_0=30.0, is_first=True)
    hidden = SirenLayer(256, 256, omega_0=30.0)
    assert first.linear.weight.abs().max() <= 1 / 4
    assert first.linear.weight.abs().max() > 0.9 / 4          # fills the whole range
    bound = math.sqrt(6 / 256) / 30
    assert hidden.linear.weight.abs().max() <= bound
    assert hidden.linear.weight.abs().max() > 0.9 * bound
    # sine layers keep pre-activations of order one through depth (the point of the init)
    net = SirenNet(4, 256, 1, n_layers=8)
    h = torch.rand(2048, 4) * 2 - 1
    with torch.no_grad():
        for layer in net.layers:
            pre = layer.linear(h) * layer.omega_0
            h = layer(h)
    assert 0.3 < float(pre.std()) < 3.0


def test_layer_count_follows_the_paper():
    net = SirenNet(24, 512, 1, n_layers=12)
    assert len(net.layers) == 11                       # 11 sine layers + linear output
    assert isinstance(net.output.activation, torch.nn.Identity)
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == (24 * 512 + 512) + 10 * (512 * 512 + 512) + (512 + 1)
    with pytest.raises(ValueError):
        SirenNet(4, 8, 1, n_layers=1)


def test_joint_siren_grid_equals_paired_rows():
    torch.manual_seed(1)
    net = JointSiren(n_frequencies=6, n_layers=4, hidden_features=32)
    points, positions = torch.rand(7, 4), torch.rand(5)
    grid = net(points, positions)
    pairs = net.forward_pairs(points.repeat_interleave(5, 0), positions.repeat(7))
    assert grid.shape == (7, 5)
    torch.testing.assert_close(grid, pairs.reshape(7, 5), rtol=1e-5, atol=1e-6)


def test_factorized_is_a_dot_product_and_one_trunk_serves_all_genes():
    torch.manual_seed(2)
    net = FactorizedSiren(n_frequencies=4, n_layers=3, hidden_features=32, n_features=8)
    points, positions = torch.rand(9, 4), torch.rand(6)
    values = net(points, positions)
    weights, bias = net.gene_weights(positions)
    torch.testing.assert_close(values, net.features(points) @ weights.T + bias)
    torch.testing.assert_close(net(points, positions[2:3])[:, 0], values[:, 2])
    assert net.features(points).shape == (9, 8)


def test_factorized_gene_network_reads_an_embedding_as_is():
    torch.manual_seed(4)
    net = FactorizedSiren(n_layers=3, hidden_features=32, n_features=8, n_gene_inputs=5)
    points, embedding = torch.rand(9, 4), torch.rand(6, 5)
    values = net(points, embedding)
    assert values.shape == (9, 6)
    assert net.gene_net[0].in_features == 5
    torch.testing.assert_close(net.gene_weights(embedding)[1], net.gene_net(embedding)[:, -1])
    torch.testing.assert_close(net(points, embedding[3:4])[:, 0], values[:, 3])


def test_per_gene_networks_are_independent():
    torch.manual_seed(3)
    net = PerGeneSiren(3, n_layers=3, hidden_features=16)
    points = torch.rand(11, 4)
    out = net(points)
    assert out.shape == (11, 3)
    torch.testing.assert_close(net(points, torch.tensor([2, 0])), out[:, [2, 0]])
    out[:, 0].sum().backward()
    for weight in net.nets.weights:
        assert weight.grad[0].abs().sum() > 0
        assert weight.grad[1:].abs().sum() == 0


def test_batched_siren_matches_separate_networks():
    torch.manual_seed(4)
    batched = BatchedSirenNet(2, 4, 16, 1, n_layers=3, omega_0=30.0)
    x = torch.rand(5, 4)
    out = batched(x)
    for g in range(2):
        h = x
        for index, (weight, bias) in enumerate(zip(batched.weights, batched.biases)):
            h = h @ weight[g] + bias[g]
            if index < 2:
                h = torch.sin(30.0 * h)
        torch.testing.assert_close(out[g], h)
