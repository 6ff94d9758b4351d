"""SIREN networks for gene-expression fields (pure ``nn.Module``s: tensors in, tensors out).

Building blocks follow Sitzmann et al. (2020), "Implicit neural representations with
periodic activation functions": a layer computes ``sin(omega_0 * (W h + b))``; the first
layer draws ``W ~ U(-1/fan_in, 1/fan_in)``, later layers ``W ~ U(-sqrt(6/fan_in)/omega_0,
sqrt(6/fan_in)/omega_0)``, so that pre-activations keep unit scale through depth.

Three designs map a location to expression (``points`` are ``(x, y, z, c)``: coordinates
scaled per axis to about [-1, 1] and the tissue class ``c`` in {1 grey, -1 white, 0 other}):

``JointSiren`` (``paper``)
    The network of the seed paper, ``Phi(x, y, z, c, gamma(e_g)) -> v``: one SIREN whose
    input is the location concatenated with the positional encoding of the gene-axis
    position ``e_g``. Default 12 layers x 512 units, ``omega_0 = 30``, linear output.
``PerGeneSiren`` (``per_gene``)
    The paper's per-gene baseline ("INR"): one independent SIREN per gene on
    ``(x, y, z, c)``, evaluated as a batch of networks.
``FactorizedSiren`` (``factorized``)
    A SIREN trunk maps ``(x, y, z, c)`` to ``K`` features; a small network maps
    ``gamma(e_g)`` to ``K`` weights and a bias; ``v`` is their dot product plus the bias.
    One trunk pass serves every gene, so a dense map of G genes costs one network pass
    per voxel and an ``(n_voxels x K) @ (K x G)`` product.

Layer counts follow the paper: ``n_layers`` counts every linear map, i.e.
``n_layers - 1`` sine layers followed by one linear output layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .encoding import PositionalEncoding

#: Number of location inputs: x, y, z (scaled) and the tissue class c.
N_LOCATION_INPUTS = 4


def _sitzmann_bound(fan_in: int, omega_0: float, is_first: bool) -> float:
    """Half-width of the uniform weight initialisation of Sitzmann et al. (2020)."""
    return 1.0 / fan_in if is_first else math.sqrt(6.0 / fan_in) / omega_0


class Sine(nn.Module):
    """Element-wise ``sin(omega_0 * x)``."""

    def __init__(self, omega_0: float = 30.0):
        super().__init__()
        self.omega_0 = float(omega_0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega_0 * x)

    def extra_repr(self) -> str:
        return f"omega_0={self.omega_0}"


class SirenLayer(nn.Module):
    """One SIREN layer, ``sin(omega_0 * (W x + b))``, or a linear output layer.

    Parameters
    ----------
    dim_in, dim_out : int
    omega_0 : float
        Frequency factor of the sine (also scales the initialisation of later layers).
    is_first : bool
        Use the first-layer initialisation ``U(-1/fan_in, 1/fan_in)``.
    activation : bool
        ``False`` makes a linear layer (the output layer) with the same initialisation.
    """

    def __init__(self, dim_in: int, dim_out: int, omega_0: float = 30.0, is_first: bool = False,
                 activation: bool = True):
        super().__init__()
        self.omega_0 = float(omega_0)
        self.is_first = bool(is_first)
        self.linear = nn.Linear(dim_in, dim_out)
        self.activation = Sine(omega_0) if activation else nn.Identity()
        with torch.no_grad():  # Sitzmann et al. (2020), section 3.2 and supplement 1.5
            bound = _sitzmann_bound(dim_in, self.omega_0, self.is_first)
            self.linear.weight.uniform_(-bound, bound)
            self.linear.bias.uniform_(-1.0 / math.sqrt(dim_in), 1.0 / math.sqrt(dim_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x))


class SirenNet(nn.Module):
    """A multilayer SIREN: ``n_layers - 1`` sine layers and a linear output layer.

    Parameters
    ----------
    dim_in : int
    dim_hidden : int
        Units per sine layer (paper: 512).
    dim_out : int
    n_layers : int
        Total number of linear maps, output layer included (paper: 12); at least 2.
    omega_0 : float
        Frequency factor of the hidden layers (paper: 30).
    omega_0_initial : float, optional
        Frequency factor of the first layer (default: ``omega_0``).
    """

    def __init__(self, dim_in: int, dim_hidden: int, dim_out: int, n_layers: int = 12,
                 omega_0: float = 30.0, omega_0_initial: float | None = None):
        super().__init__()
        if n_layers < 2:
            raise ValueError(f"n_layers must be >= 2 (one sine layer and the output), got {n_layers}")
        omega_0_initial = omega_0 if omega_0_initial is None else omega_0_initial
        layers = [SirenLayer(dim_in, dim_hidden, omega_0_initial, is_first=True)]
        layers += [SirenLayer(dim_hidden, dim_hidden, omega_0) for _ in range(n_layers - 2)]
        self.layers = nn.ModuleList(layers)
        self.output = SirenLayer(dim_hidden, dim_out, omega_0, activation=False)

    def hidden(self, h: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Run the sine layers from index ``start`` on."""
        for layer in self.layers[start:]:
            h = layer(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, dim_in) -> (n, dim_out)."""
        return self.output(self.hidden(x))


class JointSiren(nn.Module):
    """The paper's network: ``Phi(x, y, z, c, gamma(e_g)) -> v``.

    Parameters
    ----------
    n_frequencies : int
        Frequencies of the positional encoding of ``e_g`` (paper: 10).
    n_layers, hidden_features, omega_0 :
        SIREN depth (paper: 12), width (512) and frequency factor (30).
    """

    def __init__(self, n_frequencies: int = 10, n_layers: int = 12, hidden_features: int = 512,
                 omega_0: float = 30.0):
        super().__init__()
        self.encoding = PositionalEncoding(n_frequencies)
        self.net = SirenNet(N_LOCATION_INPUTS + self.encoding.dim_out, hidden_features, 1,
                            n_layers=n_layers, omega_0=omega_0)

    def forward_pairs(self, points: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Evaluate paired rows.

        Parameters
        ----------
        points : (n, 4) tensor
            Scaled ``(x, y, z)`` and tissue class ``c``.
        positions : (n,) tensor
            Gene-axis position ``e_g`` of each row.

        Returns
        -------
        (n,) tensor
        """
        inputs = torch.cat([points, self.encoding(positions)], dim=1)
        return self.net(inputs)[:, 0]

    def forward(self, points: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Evaluate every point for every gene.

        The first layer is split into a location part and a gene part, so each is
        computed once: ``W [p; gamma] + b = W_p p + (W_g gamma + b)``.

        Parameters
        ----------
        points : (n, 4) tensor
        positions : (g,) tensor
            Gene-axis positions of the genes to evaluate.

        Returns
        -------
        (n, g) tensor
        """
        first = self.net.layers[0]
        weight = first.linear.weight
        location = points @ weight[:, :N_LOCATION_INPUTS].T                        # (n, H)
        gene = self.encoding(positions) @ weight[:, N_LOCATION_INPUTS:].T + first.linear.bias
        h = first.activation(location[:, None, :] + gene[None, :, :])             # (n, g, H)
        n, g = h.shape[:2]
        out = self.net.output(self.net.hidden(h.reshape(n * g, -1), start=1))
        return out.reshape(n, g)


class BatchedSirenNet(nn.Module):
    """``n_networks`` independent SIRENs evaluated together (batched matrix products).

    Parameters are stacked along a leading network axis; each network has its own
    Sitzmann initialisation and receives only its own gradient.

    Parameters
    ----------
    n_networks, dim_in, dim_hidden, dim_out, n_layers, omega_0 :
        As :class:`SirenNet`, for each of the ``n_networks`` networks.
    """

    def __init__(self, n_networks: int, dim_in: int, dim_hidden: int, dim_out: int,
                 n_layers: int = 12, omega_0: float = 30.0):
        super().__init__()
        if n_layers < 2:
            raise ValueError(f"n_layers must be >= 2, got {n_layers}")
        self.omega_0 = float(omega_0)
        dims = [dim_in] + [dim_hidden] * (n_layers - 1) + [dim_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for index, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            bound = _sitzmann_bound(fan_in, self.omega_0, is_first=index == 0)
            weight = torch.empty(n_networks, fan_in, fan_out).uniform_(-bound, bound)
            bias = torch.empty(n_networks, 1, fan_out).uniform_(-1 / math.sqrt(fan_in),
                                                                1 / math.sqrt(fan_in))
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(bias))

    def forward(self, x: torch.Tensor, networks: torch.Tensor | None = None) -> torch.Tensor:
        """(n, dim_in) shared input -> (n_selected, n, dim_out).

        ``networks`` (long tensor) selects a subset of the networks; default all.
        """
        h = None
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            if networks is not None:
                weight, bias = weight[networks], bias[networks]
            if h is None:   # the shared input goes to every network
                h = torch.einsum("ni,gio->gno", x, weight) + bias
            else:
                h = torch.baddbmm(bias, h, weight)
            if index < last:
                h = torch.sin(self.omega_0 * h)
        return h


class PerGeneSiren(nn.Module):
    """The paper's per-gene baseline: one SIREN per gene on ``(x, y, z, c)``.

    Parameters
    ----------
    n_genes : int
    n_layers, hidden_features, omega_0 :
        Architecture of each gene's network.
    """

    def __init__(self, n_genes: int, n_layers: int = 12, hidden_features: int = 512,
                 omega_0: float = 30.0):
        super().__init__()
        self.n_genes = int(n_genes)
        self.nets = BatchedSirenNet(n_genes, N_LOCATION_INPUTS, hidden_features, 1,
                                    n_layers=n_layers, omega_0=omega_0)

    def forward(self, points: torch.Tensor, genes: torch.Tensor | None = None) -> torch.Tensor:
        """(n, 4) points -> (n, g) values of the selected genes (indices; default all)."""
        return self.nets(points, genes)[..., 0].T


class FactorizedSiren(nn.Module):
    """SIREN trunk on the location, gene network on ``gamma(e_g)``, joined by a dot product.

    ``v(p, g) = <f(p), w(g)> / sqrt(K) + b(g)`` where ``f`` is a SIREN trunk with ``K``
    outputs and ``(w, b)`` come from a small SiLU network on the positional encoding of
    the gene-axis position -- or, with ``n_gene_inputs``, on a gene embedding of that
    length given as is (e.g. :func:`brainexpr.geneaxis.profile_pca_embedding`).

    Parameters
    ----------
    n_frequencies : int
        Frequencies of the positional encoding of ``e_g`` (unused with ``n_gene_inputs``).
    n_layers, hidden_features, omega_0 :
        Trunk depth, width and frequency factor.
    n_features : int
        ``K``, the number of trunk features shared by all genes.
    gene_hidden : int
        Width of the gene network.
    gene_layers : int
        Number of linear maps of the gene network (>= 1).
    n_gene_inputs : int or None
        ``None``: the gene network reads ``gamma(e_g)`` of a (g,) gene-axis position.
        An integer ``k``: it reads a (g, k) gene embedding directly (no encoding).
    """

    def __init__(self, n_frequencies: int = 10, n_layers: int = 12, hidden_features: int = 512,
                 omega_0: float = 30.0, n_features: int = 64, gene_hidden: int = 64,
                 gene_layers: int = 2, n_gene_inputs: int | None = None):
        super().__init__()
        if gene_layers < 1:
            raise ValueError(f"gene_layers must be >= 1, got {gene_layers}")
        self.encoding = PositionalEncoding(n_frequencies) if n_gene_inputs is None \
            else nn.Identity()
        n_inputs = self.encoding.dim_out if n_gene_inputs is None else int(n_gene_inputs)
        self.n_features = int(n_features)
        self.trunk = SirenNet(N_LOCATION_INPUTS, hidden_features, n_features, n_layers=n_layers,
                              omega_0=omega_0)
        dims = [n_inputs] + [gene_hidden] * (gene_layers - 1) + [n_features + 1]
        modules: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            modules.append(nn.Linear(fan_in, fan_out))
            if index < len(dims) - 2:
                modules.append(nn.SiLU())
        self.gene_net = nn.Sequential(*modules)

    def features(self, points: torch.Tensor) -> torch.Tensor:
        """(n, 4) points -> (n, K) trunk features."""
        return self.trunk(points)

    def gene_weights(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(g,) gene-axis positions (or (g, k) embeddings) -> weights (g, K) (already divided
        by sqrt(K)) and bias (g,)."""
        out = self.gene_net(self.encoding(positions))
        return out[:, :-1] / math.sqrt(self.n_features), out[:, -1]

    @staticmethod
    def combine(features: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """(n, K) features, (g, K) weights, (g,) bias -> (n, g) values."""
        return torch.addmm(bias, features, weights.T)

    def forward(self, points: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(n, 4) points, (g,) gene-axis positions (or (g, k) embeddings) -> (n, g) values."""
        weights, bias = self.gene_weights(positions)
        return self.combine(self.features(points), weights, bias)
