"""NeRF positional encoding of the gene-axis position (pure ``nn.Module``).

The seed paper (section 3) replaces the scalar gene-axis position ``e_g`` by

    gamma(e) = (sin(2^0 pi e), cos(2^0 pi e), ..., sin(2^(N-1) pi e), cos(2^(N-1) pi e))

with ``N = 10`` frequencies (Mildenhall et al., 2020), a vector of length ``2N``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def positional_encoding(values: torch.Tensor, n_frequencies: int = 10) -> torch.Tensor:
    """Encode scalars with sines and cosines at ``n_frequencies`` octaves.

    Parameters
    ----------
    values : (n,) or (n, 1) tensor
        Scalars, typically gene-axis positions in [0, 1].
    n_frequencies : int
        Number of frequencies ``N``; frequency ``k`` is ``2**k * pi``. 0: no encoding,
        the raw value (the paper's ablation baseline, Fig. 3).

    Returns
    -------
    (n, 2 * n_frequencies) tensor, or (n, 1) when ``n_frequencies`` is 0
        Interleaved ``sin``/``cos`` pairs, lowest frequency first, as in the paper.
    """
    values = values.reshape(-1, 1)
    if n_frequencies < 0:
        raise ValueError(f"n_frequencies must be >= 0, got {n_frequencies}")
    if n_frequencies == 0:
        return values
    frequencies = math.pi * 2.0 ** torch.arange(n_frequencies, dtype=values.dtype,
                                                device=values.device)
    angles = values * frequencies                       # (n, N)
    return torch.stack((torch.sin(angles), torch.cos(angles)), dim=-1).reshape(len(values), -1)


class PositionalEncoding(nn.Module):
    """``gamma(e)``: map scalars to ``2 * n_frequencies`` sinusoidal features.

    Parameters
    ----------
    n_frequencies : int
        Number of frequencies ``N`` (paper: 10); 0 passes the raw value through.
    """

    def __init__(self, n_frequencies: int = 10):
        super().__init__()
        if n_frequencies < 0:
            raise ValueError(f"n_frequencies must be >= 0, got {n_frequencies}")
        self.n_frequencies = int(n_frequencies)

    @property
    def dim_out(self) -> int:
        """Length of the encoding, ``2 * n_frequencies`` (1 without encoding)."""
        return 2 * self.n_frequencies if self.n_frequencies else 1

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """Encode ``values`` of shape (n,) or (n, 1) into (n, 2N)."""
        return positional_encoding(values, self.n_frequencies)

    def extra_repr(self) -> str:
        return f"n_frequencies={self.n_frequencies}"
