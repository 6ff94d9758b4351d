"""Graph-regularised variational autoencoder from regional expression to vulnerability.

The cross-scale generative model of Vaithianathan (2026, arXiv:2606.05870): each region's
expression profile ``x`` (genes) is encoded to a low-dimensional latent ``z`` (the
"transcriptomic programs"), decoded back to expression, and a predictor head maps the
latent to the region's vulnerability ``y``. A graph penalty ``trace(Z.T L Z)`` with ``L``
the Laplacian of a region graph (:mod:`brainexpr.analysis.graphs`) asks neighbouring
regions to have similar programs.

Loss (per model, all terms averaged over the training regions)::

    total = reconstruction_weight * reconstruction      mean squared error, z-scored genes
          + beta * kl                                   KL(q(z|x) || N(0, I)), nats/region
          + prediction_weight * prediction              mean squared error, z-scored target
          + graph_weight * graph                        trace(M.T L M) / n, M = latent means
          + prediction_graph_weight * prediction_graph  yhat.T L yhat / n (z-scored target)

Two layers, as everywhere in brainexpr:

* pure ``nn.Module``s (:class:`EnsembleLinear`, :class:`RegionEncoder`,
  :class:`ExpressionDecoder`, :class:`VulnerabilityHead`, :class:`GraphVAE`) and the
  function :func:`vae_loss_terms`: tensors in, tensors out. Every module holds
  ``n_members`` independent copies of its weights, so that one call trains several models
  at once (the spatial-null test fits one model per surrogate map);
* the scikit-learn estimator :class:`GraphVAERegressor`: validation, scaling, seeding,
  device choice, training loop, checkpoints.

Implementation note (exact, not an approximation). With ``n`` training regions the z-scored
and centred expression rows span at most ``r = n - 1`` directions of gene space. The
estimator feeds the encoder the coordinates of each region in that span (orthonormal basis
``V``, genes x r) and lets the decoder reconstruct span coordinates; the gene-space
reconstruction is ``x_hat = decoded @ V.T``. For training regions the reconstruction error
is identical to the gene-space error of a decoder whose gene loadings lie in the span
(where its optimum lies), and an encoder acting on the full gene vector could only add, for
a new region, its out-of-span part times untrained initial weights. Working in the span
made one training step about ten times cheaper for 916 genes and 68 regions; the decoder's
squared error is expanded (:meth:`ExpressionDecoder.squared_error`) so that training never
forms the reconstruction. :meth:`GraphVAERegressor.cross_validated_predictions` trains every
(held-out fold, target) pair in one batched loop, the members of a fold sharing its inputs.

Example
-------
>>> model = GraphVAERegressor(n_components=6, random_state=0)
>>> model.fit(expression, atrophy, adjacency=region_graph(list(expression.index)))
>>> programs = model.transform(expression)          # (68, 6) program scores
>>> loadings = model.gene_loadings()                # (916, 6) genes x programs
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..datasets.validate import check_choice
from ..errors import InputError
from ..utils import progress
from .checkpoint import read_model_file, restore, save_state

logger = logging.getLogger(__name__)

LOSS_TERMS = ("reconstruction", "kl", "prediction", "graph", "prediction_graph")


# --------------------------------------------------------------------------- modules
class EnsembleLinear(nn.Module):
    """``n_members`` independent linear layers evaluated in one batched product.

    Parameters
    ----------
    n_members, in_features, out_features : int

    Shapes
    ------
    input : (n_members, n, in_features), one input per member; or
        (n_groups, n, in_features) shared by consecutive blocks of
        ``n_members // n_groups`` members (one large product per group); or
        (n, in_features) shared by all members.
    output : (n_members, n, out_features)
    """

    def __init__(self, n_members: int, in_features: int, out_features: int):
        super().__init__()
        self.n_members, self.in_features, self.out_features = n_members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(n_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Uniform(-1/sqrt(in), 1/sqrt(in)) for weights and biases, as ``nn.Linear``."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            for tensor in (self.weight, self.bias):
                values = torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype)
                tensor.copy_(values.mul_(2 * bound).sub_(bound))

    def forward(self, x: torch.Tensor, out_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Apply every member's layer; ``out_mask`` (n_members, out_features) of 0/1 zeroes
        output features (weights and bias) per member."""
        weight, bias = self.weight, self.bias
        if out_mask is not None:
            weight = weight * out_mask[:, None, :]
            bias = bias * out_mask[:, None, :]
        return member_matmul(x, weight) + bias


def member_matmul(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """``x @ matrices[k]`` for every member ``k``, with ``x`` shared where it can be.

    Parameters
    ----------
    x : (n, a), (n_members, n, a) or (n_groups, n, a) tensor
        Shared by all members, one per member, or one per block of
        ``n_members // n_groups`` consecutive members.
    matrices : (n_members, a, b) tensor

    Returns
    -------
    (n_members, n, b) tensor
    """
    members, a, b = matrices.shape
    if x.dim() == 3 and x.shape[0] == members:
        return torch.bmm(x, matrices)
    grouped = x if x.dim() == 3 else x[None]
    groups, n = grouped.shape[0], grouped.shape[1]
    if members % groups:
        raise ValueError(f"{groups} input groups do not divide {members} members")
    per_group = members // groups
    stacked = matrices.view(groups, per_group, a, b).permute(0, 2, 1, 3).reshape(groups, a, -1)
    out = torch.matmul(grouped, stacked)                           # (groups, n, per_group * b)
    return out.view(groups, n, per_group, b).permute(0, 2, 1, 3).reshape(members, n, b)


def _per_member(values: torch.Tensor, members: int) -> torch.Tensor:
    """Broadcast a per-group (n_groups, n) or shared (n,) tensor to (n_members, n)."""
    if values.dim() == 1:
        return values.expand(members, -1)
    if values.shape[0] == members:
        return values
    return values.repeat_interleave(members // values.shape[0], dim=0)


def graph_product(laplacian: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``laplacian @ values`` for every member.

    Parameters
    ----------
    laplacian : (n, n), (n_members, n, n) or (n_groups, n, n) tensor
        One graph for all members, one per member, or one per block of consecutive members.
    values : (n_members, n, c) tensor

    Returns
    -------
    (n_members, n, c) tensor
    """
    members, n, c = values.shape
    if laplacian.dim() == 3 and laplacian.shape[0] == members:
        return torch.bmm(laplacian, values)
    grouped = laplacian if laplacian.dim() == 3 else laplacian[None]
    groups = grouped.shape[0]
    per_group = members // groups
    stacked = values.view(groups, per_group, n, c).permute(0, 2, 1, 3).reshape(groups, n, -1)
    out = torch.matmul(grouped, stacked)
    return out.view(groups, n, per_group, c).permute(0, 2, 1, 3).reshape(members, n, c)


class RegionEncoder(nn.Module):
    """Region expression -> mean and log-variance of the latent programs.

    Shapes: input as :class:`EnsembleLinear` (per member, per group of members, or
    shared); outputs ``mu`` and ``logvar`` (n_members, n, n_latent).
    """

    def __init__(self, n_members: int, n_inputs: int, hidden_sizes, n_latent: int):
        super().__init__()
        layers, width = [], n_inputs
        for size in hidden_sizes:
            layers += [EnsembleLinear(n_members, width, int(size)), nn.ELU()]
            width = int(size)
        self.body = nn.Sequential(*layers)
        self.out = EnsembleLinear(n_members, width, 2 * n_latent)
        self.n_latent = n_latent

    def forward(self, x: torch.Tensor):
        out = self.out(self.body(x))
        return out[..., : self.n_latent], out[..., self.n_latent:].clamp(-10.0, 10.0)


class ExpressionDecoder(nn.Module):
    """Latent programs -> expression; linear, so its weights are the gene loadings.

    Shapes: input (n_members, n, n_latent); output (n_members, n, n_outputs).
    """

    def __init__(self, n_members: int, n_latent: int, n_outputs: int):
        super().__init__()
        self.linear = EnsembleLinear(n_members, n_latent, n_outputs)

    def forward(self, z: torch.Tensor, out_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(z, out_mask)

    def squared_error(self, z: torch.Tensor, x: torch.Tensor,
                      out_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``|x - decoder(z)|^2`` per member and region, without forming the reconstruction.

        Expands ``|x|^2 - 2 x.(zW + b) + |zW + b|^2`` so that the cost grows with the latent
        size instead of the output size (the gradients are those of the direct form).

        Parameters
        ----------
        z : (n_members, n, n_latent) tensor
        x : (n, n_outputs), (n_members, n, n_outputs) or (n_groups, n, n_outputs) tensor
        out_mask : (n_members, n_outputs) tensor of 0/1, optional

        Returns
        -------
        (n_members, n) tensor
        """
        weight, bias = self.linear.weight, self.linear.bias            # (m, d, r), (m, 1, r)
        if out_mask is not None:
            weight = weight * out_mask[:, None, :]
            bias = bias * out_mask[:, None, :]
        members, d = weight.shape[0], weight.shape[1]
        projected = member_matmul(x, torch.cat([weight, bias], dim=1).transpose(1, 2))
        cross = (projected[..., :d] * z).sum(dim=2) + projected[..., d]  # x.(zW + b)
        gram = torch.bmm(weight, weight.transpose(1, 2))               # (m, d, d)
        weight_bias = torch.bmm(weight, bias.transpose(1, 2))[..., 0]  # (m, d)
        decoded_norm = ((torch.bmm(z, gram) * z).sum(dim=2)
                        + 2 * (z * weight_bias[:, None, :]).sum(dim=2)
                        + (bias ** 2).sum(dim=(1, 2))[:, None])
        x_norm = _per_member((x ** 2).sum(dim=-1), members)
        return torch.clamp(x_norm - 2 * cross + decoded_norm, min=0.0)


class VulnerabilityHead(nn.Module):
    """Latent programs -> regional vulnerability (linear). Output (n_members, n)."""

    def __init__(self, n_members: int, n_latent: int):
        super().__init__()
        self.linear = EnsembleLinear(n_members, n_latent, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)[..., 0]


class GraphVAE(nn.Module):
    """Encoder, decoder and predictor head of the cross-scale VAE.

    ``forward(x, noise=None, input_mask=None, reconstruct=True)`` returns a dict of
    tensors: ``mu``, ``logvar``, ``z`` (n_members, n, n_latent), ``squared_error``
    (n_members, n; squared reconstruction error summed over the inputs), ``prediction``
    (n_members, n) and, when ``reconstruct``, ``reconstruction`` (n_members, n, n_inputs).
    ``x`` is (n, n_inputs), (n_members, n, n_inputs) or (n_groups, n, n_inputs) (see
    :class:`EnsembleLinear`). ``noise`` (standard normal, shape of ``mu``) draws
    ``z = mu + noise * exp(logvar / 2)``; without it ``z = mu`` (evaluation).
    ``input_mask`` (n_members, n_inputs) of 0/1 marks padded input coordinates, which the
    decoder then reconstructs as exactly 0.
    """

    def __init__(self, n_inputs: int, n_latent: int, hidden_sizes=(32,), n_members: int = 1):
        super().__init__()
        self.encoder = RegionEncoder(n_members, n_inputs, hidden_sizes, n_latent)
        self.decoder = ExpressionDecoder(n_members, n_latent, n_inputs)
        self.head = VulnerabilityHead(n_members, n_latent)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        for module in self.modules():
            if isinstance(module, EnsembleLinear):
                module.reset_parameters(generator)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None,
                input_mask: torch.Tensor | None = None, reconstruct: bool = True) -> dict:
        mu, logvar = self.encoder(x)
        z = mu if noise is None else mu + noise * torch.exp(0.5 * logvar)
        outputs = {"mu": mu, "logvar": logvar, "z": z, "prediction": self.head(z),
                   "squared_error": self.decoder.squared_error(z, x, input_mask)}
        if reconstruct:
            outputs["reconstruction"] = self.decoder(z, input_mask)
        return outputs

    @torch.no_grad()
    def reorder_programs(self, order: torch.Tensor, signs: torch.Tensor) -> None:
        """Permute and flip the latent programs of every member (the model is unchanged).

        Parameters
        ----------
        order : (n_members, n_latent) long tensor
            New program ``j`` of member ``k`` is old program ``order[k, j]``.
        signs : (n_members, n_latent) tensor of +-1, applied after the permutation.
        """
        d = self.encoder.n_latent
        out = self.encoder.out
        index = order.to(out.weight.device)
        sign = signs.to(out.weight.device, out.weight.dtype)
        columns = index[:, None, :].expand_as(out.weight[..., :d])
        mu_w = torch.gather(out.weight[..., :d], 2, columns)
        lv_w = torch.gather(out.weight[..., d:], 2, columns)
        mu_b = torch.gather(out.bias[..., :d], 2, index[:, None, :])
        lv_b = torch.gather(out.bias[..., d:], 2, index[:, None, :])
        out.weight.copy_(torch.cat([mu_w * sign[:, None, :], lv_w], dim=2))
        out.bias.copy_(torch.cat([mu_b * sign[:, None, :], lv_b], dim=2))
        for linear in (self.decoder.linear, self.head.linear):
            rows = torch.gather(linear.weight, 1, index[:, :, None].expand_as(linear.weight))
            linear.weight.copy_(rows * sign[:, :, None])


def vae_loss_terms(outputs: dict, y: torch.Tensor, laplacian: torch.Tensor | None = None,
                   n_genes: int = 1, region_mask: torch.Tensor | None = None, skip=()) -> dict:
    """Named loss terms of :class:`GraphVAE`, one value per member.

    Parameters
    ----------
    outputs : dict
        ``GraphVAE.forward`` output.
    y : (n_members, n) tensor
        Z-scored targets, one row per member.
    laplacian : (n, n), (n_members, n, n) or (n_groups, n, n) tensor, optional
        Region-graph Laplacian; ``None`` makes both graph terms zero.
    n_genes : int
        Divisor of the squared reconstruction error per region; the estimator passes the
        number of genes so that the term is the gene-space mean squared error.
    region_mask : (n_members, n) tensor of 0/1, optional
        Regions that belong to each member's training set (padding is 0).
    skip : collection of str
        Graph terms not to compute (returned as zeros; saves time when their weight is 0).

    Returns
    -------
    dict of (n_members,) tensors
        ``reconstruction``, ``kl``, ``prediction``, ``graph``, ``prediction_graph``.
    """
    mu, logvar, prediction = outputs["mu"], outputs["logvar"], outputs["prediction"]
    members, n = prediction.shape
    if region_mask is None:
        region_mask = torch.ones((members, n), dtype=mu.dtype, device=mu.device)
    count = region_mask.sum(dim=1)
    reconstruction_error = (outputs["squared_error"] * region_mask).sum(dim=1) / (count * n_genes)
    kl_region = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(dim=2)
    kl = (kl_region * region_mask).sum(dim=1) / count
    prediction_error = (((prediction - y) ** 2) * region_mask).sum(dim=1) / count
    graph = torch.zeros_like(kl)
    prediction_graph = torch.zeros_like(kl)
    if laplacian is not None and "graph" not in skip:
        graph = (mu * graph_product(laplacian, mu)).sum(dim=(1, 2)) / count
    if laplacian is not None and "prediction_graph" not in skip:
        smooth = graph_product(laplacian, prediction[..., None])[..., 0]
        prediction_graph = (prediction * smooth).sum(dim=1) / count
    return {"reconstruction": reconstruction_error, "kl": kl, "prediction": prediction_error,
            "graph": graph, "prediction_graph": prediction_graph}


# --------------------------------------------------------------------------- helpers
def select_device(device: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise the named device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was requested but no CUDA device is available; "
                         "use device='auto' or 'cpu'")
    return resolved


def _as_matrix(X, name: str = "X"):
    names = index = None
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        index = list(X.index)
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"{name} has duplicated gene columns: {', '.join(dup[:10])}")
    try:
        array = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric (regions x genes): {exc}") from None
    if array.ndim != 2:
        raise InputError(f"{name} must be a 2-D (n_regions, n_genes) matrix, got shape "
                         f"{array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {array.shape})")
    if not np.isfinite(array).all():
        bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
        where = [index[i] for i in bad[:5]] if index is not None else bad[:5].tolist()
        raise InputError(f"{name} has missing or infinite values in regions {where}; "
                         "impute or drop them first")
    return array, names, index


def _as_targets(y, n: int, index):
    if isinstance(y, (pd.Series, pd.DataFrame)) and index is not None:
        missing = [r for r in index if r not in y.index]
        if missing:
            raise InputError(f"y has no value for {len(missing)} region(s) of X: "
                             f"{', '.join(map(str, missing[:8]))}")
        y = y.loc[index]
    array = np.asarray(y, dtype=float)
    single = array.ndim == 1
    if single:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != n:
        raise InputError(f"y must have one value per region of X ({n}), got shape "
                         f"{np.shape(y)}")
    if not np.isfinite(array).all():
        raise InputError("y has missing or infinite values; drop those regions from X and y")
    if (array.std(axis=0) == 0).any():
        raise InputError("y is constant across regions; there is nothing to predict")
    return array, single


#: Largest number of models trained in one batched run.
MAX_MEMBERS = 2000


@contextlib.contextmanager
def torch_threads(n_threads: int | None):
    """Let torch use ``n_threads`` CPU threads inside the block (``None``: unchanged)."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _prepare(array: np.ndarray, targets: np.ndarray, adjacency, normalized: bool) -> dict:
    """Z-score genes and targets on the training regions; span basis; Laplacian."""
    from ..analysis.graphs import laplacian

    gene_mean = array.mean(axis=0)
    scale = array.std(axis=0)
    gene_scale = np.where(scale > 0, scale, 1.0)
    standardized = (array - gene_mean) / gene_scale
    _, singular, vt = np.linalg.svd(standardized, full_matrices=False)
    rank = int((singular > singular[0] * 1e-10).sum()) if singular.size and singular[0] > 0 else 0
    if rank == 0:
        raise InputError("X is constant across regions; there is nothing to encode")
    basis = vt[:rank].T
    target_mean = targets.mean(axis=0)
    target_scale = targets.std(axis=0)
    if (target_scale == 0).any():
        raise InputError("y is constant across the training regions; nothing to predict")
    return {"gene_mean": gene_mean, "gene_scale": gene_scale, "basis": basis,
            "coords": standardized @ basis, "target_mean": target_mean,
            "target_scale": target_scale, "target_std": (targets - target_mean) / target_scale,
            "laplacian": None if adjacency is None else laplacian(adjacency, normalized)}


def _pad_folds(fold_data, columns) -> dict:
    """Zero-padded per-fold arrays and per-member targets and masks.

    Members are fold-major: member ``f * len(columns) + j`` is fold ``f`` and target
    ``columns[j]``; every fold's expression coordinates and graph are stored once and
    shared by its block of members.
    """
    n_max = max(prepared["coords"].shape[0] for _, prepared, _ in fold_data)
    r_max = max(prepared["coords"].shape[1] for _, prepared, _ in fold_data)
    t_max = max(test_coords.shape[0] for _, _, test_coords in fold_data)
    folds, per_fold = len(fold_data), len(columns)
    x = np.zeros((folds, n_max, r_max), np.float32)
    x_test = np.zeros((folds, t_max, r_max), np.float32)
    y = np.zeros((folds, per_fold, n_max), np.float32)
    region_mask = np.zeros((folds, per_fold, n_max), np.float32)
    input_mask = np.zeros((folds, per_fold, r_max), np.float32)
    has_graph = fold_data[0][1]["laplacian"] is not None
    lap = np.zeros((folds, n_max, n_max), np.float32) if has_graph else None
    for f, (_, prepared, test_coords) in enumerate(fold_data):
        n, r = prepared["coords"].shape
        x[f, :n, :r] = prepared["coords"]
        x_test[f, : test_coords.shape[0], :r] = test_coords
        y[f, :, :n] = prepared["target_std"][:, columns].T
        region_mask[f, :, :n] = 1.0
        input_mask[f, :, :r] = 1.0
        if has_graph:
            lap[f, :n, :n] = prepared["laplacian"]
    members = folds * per_fold
    return {"x": x, "x_test": x_test, "y": y.reshape(members, n_max),
            "region_mask": region_mask.reshape(members, n_max),
            "input_mask": input_mask.reshape(members, r_max), "laplacian": lap}


def _train_members(x, y, *, n_components: int, hidden_sizes, weights: dict, n_epochs: int,
                   learning_rate: float, weight_decay: float, device: torch.device, seed: int,
                   n_genes: int, lap=None, region_mask=None, input_mask=None):
    """Train independent graph VAEs, one per row of ``y``, in one batched loop.

    Parameters
    ----------
    x : (n, r) array shared by all members, (n_members, n, r), or (n_groups, n, r) shared
        by consecutive blocks of members
        Span coordinates of the training regions.
    y : (n_members, n) array
        Z-scored targets.
    lap : (n, n), (n_members, n, n) or (n_groups, n, n) array, optional
    region_mask : (n_members, n) array, optional
    input_mask : (n_members, r) array, optional

    Returns
    -------
    module : GraphVAE
        On CPU, programs ordered by contribution to the prediction and signed so that a
        higher score predicts more vulnerability.
    final : dict of (n_members,) arrays
        Every loss term in evaluation mode (``z = mu``) and the weighted ``total``.
    history : (n_epochs, n_terms + 1) array
        Training terms averaged over members, and the total (graph terms with weight 0
        are not computed during training and read 0 here).
    """
    def tensor(value):
        return None if value is None else torch.as_tensor(value, dtype=torch.float32,
                                                          device=device)

    k, d = y.shape[0], int(n_components)
    module = GraphVAE(np.shape(x)[-1], d, hidden_sizes, n_members=k)
    module.reset_parameters(torch.Generator().manual_seed(seed))
    module.to(device)
    x_t, y_t, lap_t = tensor(x), tensor(y), tensor(lap)
    region_mask, input_mask = tensor(region_mask), tensor(input_mask)
    noise_generator = torch.Generator(device=device).manual_seed(seed + 1)
    optimizer = torch.optim.AdamW(module.parameters(), lr=learning_rate,
                                  weight_decay=weight_decay, foreach=True)
    history = torch.zeros((n_epochs, len(LOSS_TERMS) + 1), device=device)
    unused = [name for name in ("graph", "prediction_graph") if weights[name] == 0]
    module.train()
    for epoch in progress(range(n_epochs), desc="graph VAE", unit="epoch"):
        noise = torch.randn((k, y_t.shape[1], d), generator=noise_generator, device=device)
        terms = vae_loss_terms(module(x_t, noise, input_mask, reconstruct=False), y_t, lap_t,
                               n_genes=n_genes, region_mask=region_mask, skip=unused)
        total = sum(weights[name] * terms[name] for name in LOSS_TERMS)
        optimizer.zero_grad(set_to_none=True)
        total.sum().backward()  # members are independent: their gradients do not mix
        optimizer.step()
        with torch.no_grad():
            history[epoch] = torch.stack([*(terms[name].mean() for name in LOSS_TERMS),
                                          total.mean()])
    history = history.cpu().numpy().astype(float)
    if not np.isfinite(history[-1]).all():
        raise InputError("training diverged (non-finite loss); lower learning_rate")
    module.eval()
    with torch.no_grad():
        mu = module(x_t, reconstruct=False)["mu"]
        mask = (torch.ones(mu.shape[:2], device=device) if region_mask is None
                else region_mask)[..., None]
        count = mask.sum(dim=1)
        mean = (mu * mask).sum(dim=1) / count
        spread = torch.sqrt((((mu - mean[:, None, :]) ** 2) * mask).sum(dim=1) / count)
        head = module.head.linear.weight[..., 0]                          # (k, d)
        order = torch.argsort((head * spread).abs(), dim=1, descending=True)
        signs = torch.sign(torch.gather(head, 1, order))
        signs[signs == 0] = 1.0
        module.reorder_programs(order, signs)
        final = vae_loss_terms(module(x_t, None, input_mask, reconstruct=False), y_t, lap_t,
                               n_genes=n_genes, region_mask=region_mask)
    module.to("cpu")
    final = {name: value.cpu().numpy().astype(float) for name, value in final.items()}
    final["total"] = sum(weights[name] * final[name] for name in LOSS_TERMS)
    return module, final, history


# --------------------------------------------------------------------------- estimator
class GraphVAERegressor(RegressorMixin, BaseEstimator):
    """Graph-regularised VAE: regional expression -> latent programs -> vulnerability.

    Parameters
    ----------
    n_components : int
        Number of latent programs.
    hidden_sizes : tuple of int
        Widths of the encoder's hidden layers (ELU).
    beta : float
        Weight of the KL term.
    reconstruction_weight, prediction_weight : float
        Weights of the reconstruction and prediction terms.
    graph_weight : float
        Weight of ``trace(M.T L M) / n`` on the latent means ``M``.
    prediction_graph_weight : float
        Weight of ``yhat.T L yhat / n`` on the (z-scored) predictions.
    laplacian : {"normalized", "combinatorial"}
        Laplacian of the region graph given to :meth:`fit`.
    n_epochs : int
        Full-batch Adam steps (fixed; no model selection on the training loss).
    learning_rate, weight_decay : float
        AdamW settings.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    n_threads : int or None
        CPU threads torch may use while fitting (restored afterwards). One is fastest for
        these small batched products and does not fight other jobs for cores; ``None``
        leaves torch's setting.
    random_state : int
        Seed of the weight initialisation and the sampling noise; fits are deterministic
        on a given device.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Gene symbols, when ``X`` was a DataFrame.
    n_targets_ : int
        Number of target columns; each gets its own independent model.
    gene_mean_, gene_scale_ : (n_genes,) arrays
        Z-scoring of the genes over the training regions.
    basis_ : (n_genes, r) array
        Orthonormal basis of the training regions' span (see the module notes).
    target_mean_, target_scale_ : (n_targets,) arrays
    module_ : GraphVAE
        The trained networks (on CPU).
    loss_terms_ : pandas.DataFrame
        (n_targets, terms) final values of every named term (evaluation mode, ``z = mu``)
        and the weighted ``total``.
    loss_history_ : pandas.DataFrame
        (n_epochs, terms) training losses averaged over targets.
    components_ : (n_components, n_genes) or (n_targets, n_components, n_genes) array
        Gene loadings of every program (decoder weights in z-scored gene units). Programs
        are ordered by their contribution to the prediction and signed so that a higher
        program score predicts more vulnerability.
    """

    def __init__(self, n_components: int = 6, hidden_sizes=(32,), beta: float = 0.01,
                 reconstruction_weight: float = 1.0, prediction_weight: float = 1.0,
                 graph_weight: float = 0.1, prediction_graph_weight: float = 0.0,
                 laplacian: str = "normalized", n_epochs: int = 300,
                 learning_rate: float = 2e-2, weight_decay: float = 1e-3,
                 device: str = "auto", n_threads: int | None = 1, random_state: int = 0):
        self.n_components = n_components
        self.hidden_sizes = hidden_sizes
        self.beta = beta
        self.reconstruction_weight = reconstruction_weight
        self.prediction_weight = prediction_weight
        self.graph_weight = graph_weight
        self.prediction_graph_weight = prediction_graph_weight
        self.laplacian = laplacian
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        from ..analysis.graphs import LAPLACIANS

        if int(self.n_components) < 1:
            raise InputError(f"n_components must be >= 1, got {self.n_components}")
        if any(int(h) < 1 for h in self.hidden_sizes):
            raise InputError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
        for name in ("beta", "reconstruction_weight", "prediction_weight", "graph_weight",
                     "prediction_graph_weight", "weight_decay"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
        check_choice(self.laplacian, LAPLACIANS, "laplacian")
        if int(self.n_epochs) < 1 or not self.learning_rate > 0:
            raise InputError("n_epochs must be >= 1 and learning_rate > 0")
        if self.n_threads is not None and int(self.n_threads) < 1:
            raise InputError(f"n_threads must be None or >= 1, got {self.n_threads!r}")
        if self.random_state is None or isinstance(self.random_state, np.random.Generator):
            raise InputError("random_state must be an int (fits are seeded and deterministic)")

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self, "module_")
        array, names, _ = _as_matrix(X)
        if names is not None and getattr(self, "feature_names_in_", None) is not None:
            fitted = list(self.feature_names_in_)
            if names != fitted:
                missing = [g for g in fitted if g not in set(names)]
                if missing:
                    raise InputError(f"X lacks {len(missing)} gene(s) the model was fitted on: "
                                     f"{', '.join(missing[:8])}")
                array = np.asarray(X.loc[:, fitted], dtype=float)
        if array.shape[1] != self.n_features_in_:
            raise InputError(f"X has {array.shape[1]} genes but the model was fitted on "
                             f"{self.n_features_in_}")
        return array

    def _span_coordinates(self, array: np.ndarray) -> np.ndarray:
        return ((array - self.gene_mean_) / self.gene_scale_) @ self.basis_

    # ------------------------------------------------------------------ fit
    def _validate_fit(self, X, y, adjacency):
        from ..analysis.graphs import check_adjacency

        self._check_params()
        array, names, index = _as_matrix(X)
        n = array.shape[0]
        if n < 4:
            raise InputError(f"need at least 4 regions to fit, got {n}")
        targets, single = _as_targets(y, n, index)
        matrix = None
        if adjacency is not None:
            if isinstance(adjacency, pd.DataFrame) and index is not None:
                missing = [r for r in index if r not in adjacency.index]
                if missing:
                    raise InputError(f"adjacency lacks {len(missing)} region(s) of X: "
                                     f"{', '.join(map(str, missing[:8]))}")
                adjacency = adjacency.loc[index, index]
            matrix = check_adjacency(adjacency, n=n)
        return array, names, targets, single, matrix

    def _train_kwargs(self) -> dict:
        return dict(n_components=int(self.n_components),
                    hidden_sizes=tuple(int(h) for h in self.hidden_sizes),
                    weights=self._weights(), n_epochs=int(self.n_epochs),
                    learning_rate=float(self.learning_rate),
                    weight_decay=float(self.weight_decay), device=select_device(self.device))

    def fit(self, X, y, adjacency=None):
        """Fit one model per target column.

        Parameters
        ----------
        X : (n_regions, n_genes) array or DataFrame
            Regional expression (e.g. the 68 cortical regions x 916 L1000 genes).
        y : (n_regions,) or (n_regions, n_targets) array, Series or DataFrame
            Vulnerability; a Series/DataFrame is aligned to ``X``'s index. Several columns
            train several independent models at once.
        adjacency : (n_regions, n_regions) array or DataFrame, optional
            Region graph (:func:`brainexpr.analysis.graphs.region_graph`) in the order of
            ``X`` (a DataFrame is aligned to ``X``'s index). Without it the graph terms
            are zero.

        Returns
        -------
        self
        """
        array, names, targets, single, matrix = self._validate_fit(X, y, adjacency)
        prepared = _prepare(array, targets, matrix, self.laplacian == "normalized")
        self.n_features_in_ = array.shape[1]
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.n_targets_ = targets.shape[1]
        self._single_target = single
        for name in ("gene_mean", "gene_scale", "basis", "target_mean", "target_scale"):
            setattr(self, f"{name}_", prepared[name])
        with torch_threads(self.n_threads):
            module, final, history = _train_members(
                prepared["coords"], prepared["target_std"].T, lap=prepared["laplacian"],
                n_genes=array.shape[1], seed=int(self.random_state), **self._train_kwargs())
        self.module_ = module
        table = pd.DataFrame(final)
        table.index.name = "target"
        self.loss_terms_ = table
        self.loss_history_ = pd.DataFrame(history, columns=[*LOSS_TERMS, "total"])
        self.loss_history_.index.name = "epoch"
        decoder = module.decoder.linear.weight.detach().numpy().astype(float)  # (k, d, r)
        loadings = decoder @ self.basis_.T  # (k, d, n_genes)
        self.components_ = loadings[0] if self._single_target else loadings
        logger.info("graph VAE fitted: %d regions, %d genes, %d program(s), %d target(s); "
                    "final terms %s", array.shape[0], array.shape[1], int(self.n_components),
                    self.n_targets_, ", ".join(f"{c}={table[c].mean():.3g}" for c in table))
        return self

    def _weights(self) -> dict:
        return {"reconstruction": self.reconstruction_weight, "kl": self.beta,
                "prediction": self.prediction_weight, "graph": self.graph_weight,
                "prediction_graph": self.prediction_graph_weight}

    def cross_validated_predictions(self, X, y, folds, adjacency=None) -> np.ndarray:
        """Blocked cross-validation, all folds (and targets) trained in one batched run.

        Same result as refitting a clone of this estimator without each group of regions
        (scalers, span basis and target scaling recomputed on the training regions, the
        region graph restricted to them) and predicting the held-out group; one training
        loop serves every (fold, target) pair, which is what makes spatial-null tests of
        the cross-validated fit affordable.

        Parameters
        ----------
        X : (n_regions, n_genes) array or DataFrame
        y : (n_regions,) or (n_regions, n_targets) array
        folds : (n_regions,) array-like
            Held-out group of every region.
        adjacency : (n_regions, n_regions) array or DataFrame, optional

        Returns
        -------
        (n_regions,) or (n_regions, n_targets) array
            Out-of-fold predictions in the units of ``y``.
        """
        array, _, targets, single, matrix = self._validate_fit(X, y, adjacency)
        folds = np.asarray(folds)
        if folds.shape != (array.shape[0],):
            raise InputError(f"folds must hold one label per region ({array.shape[0]}), got "
                             f"shape {folds.shape}")
        groups = list(pd.unique(folds))
        if len(groups) < 2:
            raise InputError("blocked CV needs at least two groups of regions")
        normalized = self.laplacian == "normalized"
        fold_data = []
        for group in groups:
            test = folds == group
            train = ~test
            if train.sum() < 4:
                raise InputError(f"holding out group {group!r} leaves fewer than 4 regions")
            sub = None if matrix is None else matrix[np.ix_(train, train)]
            prepared = _prepare(array[train], targets[train], sub, normalized)
            test_coords = (((array[test] - prepared["gene_mean"]) / prepared["gene_scale"])
                           @ prepared["basis"])
            fold_data.append((test, prepared, test_coords))
        n_targets = targets.shape[1]
        per_run = max(1, MAX_MEMBERS // len(groups))
        out = np.full(targets.shape, np.nan)
        kwargs = self._train_kwargs()
        with torch_threads(self.n_threads):
            for run, start in enumerate(range(0, n_targets, per_run)):
                columns = list(range(start, min(start + per_run, n_targets)))
                batch = _pad_folds(fold_data, columns)
                module, _, _ = _train_members(
                    batch["x"], batch["y"], lap=batch["laplacian"], n_genes=array.shape[1],
                    region_mask=batch["region_mask"], input_mask=batch["input_mask"],
                    seed=int(self.random_state) + 7919 * run, **kwargs)
                with torch.no_grad():
                    prediction = module(torch.as_tensor(batch["x_test"]),
                                        reconstruct=False)["prediction"].numpy()
                prediction = prediction.reshape(len(groups), len(columns), -1)
                for f, (test, prepared, _) in enumerate(fold_data):
                    values = prediction[f, :, : int(test.sum())].T          # (n_test, columns)
                    out[np.ix_(test, columns)] = (values * prepared["target_scale"][columns]
                                                  + prepared["target_mean"][columns])
        return out[:, 0] if single else out

    # ------------------------------------------------------------------ use
    def _forward(self, X) -> dict:
        array = self._check_X(X)
        x = torch.as_tensor(self._span_coordinates(array), dtype=torch.float32)
        self.module_.eval()
        with torch.no_grad():
            return {k: v.numpy().astype(float) for k, v in self.module_(x).items()}

    def predict(self, X) -> np.ndarray:
        """Predict vulnerability.

        Parameters
        ----------
        X : (n_regions, n_genes) array or DataFrame (genes matched by name when fitted
            with names)

        Returns
        -------
        (n_regions,) array, or (n_regions, n_targets) when fitted on several targets;
        in the units of ``y``.
        """
        prediction = self._forward(X)["prediction"].T * self.target_scale_ + self.target_mean_
        return prediction[:, 0] if self._single_target else prediction

    def transform(self, X) -> np.ndarray:
        """Latent program scores (posterior means).

        Returns
        -------
        (n_regions, n_components) array, or (n_targets, n_regions, n_components).
        """
        mu = self._forward(X)["mu"]
        return mu[0] if self._single_target else mu

    def reconstruct(self, X) -> np.ndarray:
        """Decoded expression (z-scored gene units) of the latent means.

        Returns
        -------
        (n_regions, n_genes) array, or (n_targets, n_regions, n_genes).
        """
        decoded = self._forward(X)["reconstruction"] @ self.basis_.T
        return decoded[0] if self._single_target else decoded

    def program_names(self) -> list[str]:
        """``["program1", ...]`` in the fitted order."""
        return [f"program{i + 1}" for i in range(int(self.n_components))]

    def gene_loadings(self, target: int = 0) -> pd.DataFrame:
        """Gene loadings of the programs (decoder weights, z-scored gene units).

        Returns
        -------
        pandas.DataFrame
            (n_genes, n_components), index = gene symbols (or ``gene0`` ...).
        """
        check_is_fitted(self, "module_")
        loadings = self.components_ if self._single_target else self.components_[target]
        genes = (list(self.feature_names_in_) if hasattr(self, "feature_names_in_")
                 else [f"gene{i}" for i in range(self.n_features_in_)])
        return pd.DataFrame(loadings.T, index=pd.Index(genes, name="gene"),
                            columns=self.program_names())

    def head_coefficients(self, target: int = 0) -> pd.Series:
        """Weight of every program in the predictor head (z-scored target units)."""
        check_is_fitted(self, "module_")
        weights = self.module_.head.linear.weight.detach().numpy()[target, :, 0]
        return pd.Series(weights.astype(float), index=self.program_names(), name="head_weight")

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict:
        """The fitted state (protocol of :mod:`brainexpr.models.base`): network weights,
        scalers, span basis, gene names and loss terms.

        The names are those of the ``brainexpr.GraphVAERegressor/1`` layout (module
        docstring of :mod:`brainexpr.models.checkpoint`), so files of that layout load.
        """
        check_is_fitted(self, "module_")
        return {
            "state_dict": {k: v.detach().cpu().clone()
                           for k, v in self.module_.state_dict().items()},
            "arrays": {name: torch.as_tensor(np.asarray(getattr(self, name), dtype=float))
                       for name in ("gene_mean_", "gene_scale_", "basis_", "target_mean_",
                                    "target_scale_")},
            "n_inputs": int(self.basis_.shape[1]),
            "n_targets": int(self.n_targets_),
            "single_target": bool(self._single_target),
            "genes": (list(map(str, self.feature_names_in_))
                      if hasattr(self, "feature_names_in_") else None),
            "loss_terms": {c: [float(v) for v in self.loss_terms_[c]]
                           for c in self.loss_terms_.columns},
        }

    @classmethod
    def _from_state(cls, params: dict, state: dict) -> "GraphVAERegressor":
        """A fitted model from its parameters and a :meth:`_state`."""
        params = dict(params)
        params["hidden_sizes"] = tuple(int(h) for h in params["hidden_sizes"])
        model = cls(**params)
        for name, tensor in state["arrays"].items():
            setattr(model, name, tensor.numpy().astype(float))
        model.n_features_in_ = model.basis_.shape[0]
        model.n_targets_ = state["n_targets"]
        model._single_target = state["single_target"]
        if state["genes"] is not None:
            model.feature_names_in_ = np.asarray(state["genes"], dtype=object)
        module = GraphVAE(state["n_inputs"], int(params["n_components"]),
                          params["hidden_sizes"], n_members=state["n_targets"])
        module.load_state_dict(state["state_dict"])
        module.eval()
        model.module_ = module
        model.loss_terms_ = pd.DataFrame(state["loss_terms"])
        model.loss_terms_.index.name = "target"
        decoder = module.decoder.linear.weight.detach().numpy().astype(float)
        loadings = decoder @ model.basis_.T
        model.components_ = loadings[0] if model._single_target else loadings
        return model

    def save(self, path) -> Path:
        """Write one model file with everything needed to predict (atomically).

        The container of :mod:`brainexpr.models.checkpoint`: the parameters, the
        :meth:`_state`, package version and checksums.
        """
        check_is_fitted(self, "module_")
        return save_state(self, path)

    @classmethod
    def load(cls, path) -> "GraphVAERegressor":
        """Load a model file written by :meth:`save` (or by an earlier brainexpr)."""
        return restore(read_model_file(path), cls)
