"""Training of :class:`~brainexpr.models.inr.INRRegressor`: batching, the optimisation
loop, early stopping, ensembles, resuming and the calibration of the ensemble SD.

What the module docstring of :mod:`brainexpr.models.inr` lists under "Training" happens
here; the estimator (parameters, networks, scalers, prediction, its saved state) stays in
:mod:`brainexpr.models.inr`:

* :class:`_SiteData` and :class:`_ParcelData` hold the training units (sites, or parcels
  with their voxels) and draw mini-batches;
* :class:`INRTraining` is the training loop, mixed into the estimator. Its methods use the
  estimator's parameters and these of its methods: ``_build_module(n_genes)``,
  ``_forward(module, points, genes, positions)``, ``_run_members(...)`` (prediction of
  every member), ``_save_checkpoint(training=None)`` and ``_restore_training(model_file)``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..utils import progress
from .checkpoint import read_model_file

logger = logging.getLogger(__name__)

#: Validation MSE (standardised units) above which held-out data are "not predicted".
NO_SKILL_MSE = 0.9

#: Budget of (point x gene) network evaluations per step for automatic batch sizes.
AUTO_PAIR_BUDGET = 2 ** 16
#: Budget of points per step for the factorized trunk.
AUTO_POINT_BUDGET = 2 ** 16


def resolve_device(device: str = "auto") -> torch.device:
    """Return the torch device: ``"auto"`` picks CUDA when available, else the CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was requested but no CUDA device is available; use "
                         "device='auto' or 'cpu'")
    return resolved


def spatial_validation_split(coords, fraction: float, block_mm: float, rng) -> np.ndarray:
    """Choose whole cubic blocks of sites for validation.

    Parameters
    ----------
    coords : (n, 3) array, mm, MNI152
    fraction : float
        Target fraction of sites held out (blocks are added in random order until it is
        reached).
    block_mm : float
        Edge of the cubic blocks (mm); sites in one block are held out together, so a
        held-out site has no training site in the same block.
    rng : numpy.random.Generator

    Returns
    -------
    (n,) bool array, True for validation sites.
    """
    coords = np.asarray(coords, dtype=float)
    n = len(coords)
    if fraction <= 0 or n < 2:
        return np.zeros(n, dtype=bool)
    _, block = np.unique(np.floor(coords / block_mm).astype(np.int64), axis=0, return_inverse=True)
    block = block.ravel()
    counts = np.bincount(block)
    order = rng.permutation(len(counts))
    cumulative = np.cumsum(counts[order])
    n_blocks = int(np.searchsorted(cumulative, fraction * n) + 1)
    n_blocks = min(n_blocks, len(counts) - 1)  # always keep one training block
    held = np.zeros(len(counts), dtype=bool)
    held[order[:n_blocks]] = True
    return held[block]


def segment_mean(values: torch.Tensor, segments: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Mean of the rows of ``values`` within each segment.

    Parameters
    ----------
    values : (n, g) tensor
    segments : (n,) long tensor in [0, n_segments)
    n_segments : int

    Returns
    -------
    (n_segments, g) tensor (NaN for empty segments)
    """
    sums = torch.zeros(n_segments, values.shape[1], dtype=values.dtype, device=values.device)
    sums.index_add_(0, segments, values)
    counts = torch.bincount(segments, minlength=n_segments).to(values.dtype)
    return sums / counts[:, None]


def masked_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite entries of ``target``."""
    mask = torch.isfinite(target)
    diff = torch.where(mask, prediction - torch.nan_to_num(target), torch.zeros_like(prediction))
    return (diff ** 2).sum() / mask.sum().clamp_min(1)




#: Candidate shares of the floor in the recalibrated ensemble variance (:func:`spread_and_floor`).
FLOOR_SHARES = np.linspace(0.0, 1.0, 21)


def spread_and_floor(error, spread):
    """Maximum-likelihood ``a, b`` of the error model ``e ~ N(0, a^2 s^2 + b^2)``.

    Parameters
    ----------
    error, spread : (n,) arrays
        Held-out errors and the ensemble spread at the same sites (``spread > 0``).

    Returns
    -------
    a, b : float
        Over the floor's share ``lambda`` of the mean variance (:data:`FLOOR_SHARES`), the
        variance is ``c [(1 - lambda) s^2 / mean(s^2) + lambda]`` with ``c`` the closed-form
        maximum ``mean(e^2 / u)``; the share with the highest likelihood wins.
    """
    error, spread = np.asarray(error, dtype=float), np.asarray(spread, dtype=float)
    relative = spread ** 2 / np.mean(spread ** 2)
    units = (1.0 - FLOOR_SHARES)[:, None] * relative[None, :] + FLOOR_SHARES[:, None]   # (shares, n)
    total = np.mean(error[None, :] ** 2 / units, axis=1)
    loglik = -np.sum(np.log(total[:, None] * units), axis=1)
    best = int(np.argmax(loglik))
    share, c = FLOOR_SHARES[best], total[best]
    return float(np.sqrt(c * (1.0 - share) / np.mean(spread ** 2))), float(np.sqrt(c * share))


class _SiteData:
    """Training data of point samples: every unit is one site."""

    kind = "samples"

    def __init__(self, points: np.ndarray, targets: np.ndarray, coords: np.ndarray):
        self.points = torch.as_tensor(points, dtype=torch.float32)
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.coords = coords
        self.n_units = len(points)
        self.points_per_unit = 1

    def split(self, fraction, block_mm, rng):
        return spatial_validation_split(self.coords, fraction, block_mm, rng)

    def batch(self, units: np.ndarray, rng, evaluation: bool = False):
        index = torch.as_tensor(units, dtype=torch.long)
        return self.points[index], None, self.targets[index]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.points.numpy().tobytes())
        digest.update(np.nan_to_num(self.targets.numpy(), nan=-9e9).tobytes())
        return digest.hexdigest()


class _ParcelData:
    """Training data of parcel means: every unit is one parcel with its voxels."""

    kind = "regions"

    def __init__(self, points: np.ndarray, offsets: np.ndarray, targets: np.ndarray,
                 samples: int | None):
        self.points = torch.as_tensor(points, dtype=torch.float32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.counts = np.diff(self.offsets)
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.samples = samples
        self.n_units = len(self.counts)
        self.points_per_unit = samples if samples else int(self.counts.max())

    def split(self, fraction, block_mm, rng):
        held = np.zeros(self.n_units, dtype=bool)
        n_held = min(int(round(fraction * self.n_units)), self.n_units - 1)
        if fraction > 0 and n_held == 0 and self.n_units > 2:
            n_held = 1
        held[rng.permutation(self.n_units)[:n_held]] = True
        return held

    def batch(self, units: np.ndarray, rng, evaluation: bool = False):
        """Voxels of the parcels ``units``: a random sample per parcel, or all of them."""
        units = np.asarray(units, dtype=np.int64)
        counts = self.counts[units]
        samples = self.samples * (4 if evaluation else 1) if self.samples else None
        if samples is None or (evaluation and samples >= counts.max()):
            segments = np.repeat(np.arange(len(units)), counts)
            starts = np.repeat(self.offsets[units] - np.cumsum(np.r_[0, counts[:-1]]), counts)
            index = starts + np.arange(counts.sum())
        else:
            segments = np.repeat(np.arange(len(units)), samples)
            draws = rng.random((len(units), samples))
            index = (self.offsets[units][:, None] + np.floor(draws * counts[:, None])).ravel()
        index = torch.as_tensor(index, dtype=torch.long)
        segments = torch.as_tensor(segments, dtype=torch.long)
        return self.points[index], segments, self.targets[torch.as_tensor(units)]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.points.numpy().tobytes())
        digest.update(self.offsets.tobytes())
        digest.update(np.nan_to_num(self.targets.numpy(), nan=-9e9).tobytes())
        return digest.hexdigest()


class INRTraining:
    """The training loop of :class:`~brainexpr.models.inr.INRRegressor` (a mixin; see the
    module docstring for what it needs from the estimator)."""

    def _units_per_step(self, data) -> int:
        if self.batch_size is not None:
            return int(self.batch_size)
        per_unit = data.points_per_unit
        if self.design == "factorized":
            budget = AUTO_POINT_BUDGET // per_unit
        else:
            budget = AUTO_PAIR_BUDGET // (per_unit * self.n_genes_)
        return max(1, int(budget))

    def _member_seeds(self) -> list[int]:
        sequence = np.random.SeedSequence(self.seed_)
        return [int(child.generate_state(1)[0]) for child in sequence.spawn(self.n_ensemble)]

    def _fit_members(self, data) -> None:
        device = resolve_device(self.device)
        self.device_ = str(device)
        digest = hashlib.sha256(data.fingerprint().encode())
        for array in (self.coord_center_, self.coord_scale_, self.value_offset_, self.value_scale_):
            digest.update(np.asarray(array, dtype=np.float64).tobytes())
        self.fingerprint_ = digest.hexdigest()
        positions = torch.as_tensor(np.nan_to_num(self.gene_axis_, nan=0.0), dtype=torch.float32)
        self.members_, self.history_, self.best_step_ = [], [], []
        state = None
        if self.resume and self.checkpoint_path is not None and Path(self.checkpoint_path).exists():
            complete, state = self._restore_training(read_model_file(self.checkpoint_path))
            if complete:  # a finished fit of the same data: nothing to train
                logger.info("loaded the finished fit from %s", self.checkpoint_path)
                self.std_scale_, self.std_floor_ = self._calibrate_std(
                    data, self._member_seeds(), positions.to(device), device)
                return
        seeds = self._member_seeds()
        start_member = len(self.members_)
        for member in range(start_member, self.n_ensemble):
            resume_state = state if (state is not None and state["member"] == member) else None
            module, history, best_step = self._fit_one(data, member, seeds[member], positions,
                                                       device, resume_state)
            self.members_.append(module)
            self.history_.append(history)
            self.best_step_.append(best_step)
            if self.checkpoint_path is not None:
                self._save_checkpoint()
        self.std_scale_, self.std_floor_ = self._calibrate_std(data, seeds, positions.to(device), device)
        if self.checkpoint_path is not None:
            self._save_checkpoint()
            logger.info("wrote %s", self.checkpoint_path)

    def _calibrate_std(self, data, seeds, positions, device) -> np.ndarray:
        """Per-gene recalibration of the ensemble SD on spatially held-out sites.

        Each member's own spatially held-out validation sites give its out-of-sample error
        ``e`` (scaled units) beside the ensemble spread ``s`` there. The recalibrated
        variance is ``a^2 s^2 + b^2``: the spread, rescaled, plus a floor for what no
        member's disagreement shows (measurement noise, donor deviations). ``a`` and ``b``
        maximise the Gaussian likelihood of the held-out errors, per gene, over the share
        ``b^2 / (a^2 mean(s^2) + b^2)`` in 0, 0.05, ..., 1 with the total in closed form. A
        scale alone cannot be right: the spread hardly tracks where the error is large, so
        matching the average width left the 90 % intervals covering 78 % of held-out values,
        and matching their coverage made them twice as wide as the error on average
        (BENCHMARKS.md, issue 12).

        Returns
        -------
        scale, floor : (n_genes,) arrays
            ``a`` and ``b`` (scaled units); NaN (the raw spread) without an ensemble, without
            validation sites, or for parcel fits (held-out parcels are too few).
        """
        scale, floor = np.full(self.n_genes_, np.nan), np.full(self.n_genes_, np.nan)
        if len(self.members_) < 2 or self.validation_fraction <= 0 or data.kind != "samples":
            return scale, floor
        errors, spreads = [], []
        genes = np.arange(self.n_genes_)
        with torch.inference_mode():
            for member, seed in enumerate(seeds[:len(self.members_)]):
                held = data.split(self.validation_fraction, self.validation_block_mm,
                                  np.random.default_rng([seed, 0]))
                rows = torch.as_tensor(np.flatnonzero(held), dtype=torch.long)
                if len(rows) == 0:
                    continue
                outputs = torch.stack(self._run_members(data.points[rows].to(device), genes,
                                                        positions, "fp32", device)).cpu().numpy()
                errors.append(outputs[member] - data.targets[rows].numpy())
                spreads.append(outputs.std(axis=0, ddof=1))
        if not errors:
            return scale, floor
        errors, spreads = np.concatenate(errors).T, np.concatenate(spreads).T  # (genes, sites)
        for g, (error, spread) in enumerate(zip(errors, spreads)):
            valid = np.isfinite(error) & (spread > 0)
            if valid.sum() >= 10:
                scale[g], floor[g] = spread_and_floor(error[valid], spread[valid])
        logger.info("ensemble SD recalibrated on held-out blocks: spread factor median %.2f, "
                    "floor median %.2f (scaled units)", float(np.nanmedian(scale)),
                    float(np.nanmedian(floor)))
        return scale, floor

    def _optimisation_step(self, module, optimizer, data, units, rng, positions, all_genes,
                           step: int) -> float:
        """One Adam step on the training units ``units``; returns the training loss."""
        device = positions.device
        points, segments, targets = data.batch(units, rng)
        points, targets = points.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        prediction = self._forward(module, points, all_genes, positions)
        if segments is not None:
            prediction = segment_mean(prediction, segments.to(device), len(units))
        loss = masked_mse(prediction, targets)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    @torch.inference_mode()
    def _evaluate(self, module, data, units, positions, all_genes, seed) -> float:
        """Masked MSE (scaled units) on the units ``units``, in chunks."""
        if len(units) == 0:
            return float("nan")
        rng = np.random.default_rng([seed, 2 ** 31])  # the same voxels at every evaluation
        chunk = max(1, self._units_per_step(data) * 4)
        total, count = 0.0, 0
        device = positions.device
        for start in range(0, len(units), chunk):
            part = units[start:start + chunk]
            points, segments, targets = data.batch(part, rng, evaluation=True)
            prediction = self._forward(module, points.to(device), all_genes, positions)
            if segments is not None:
                prediction = segment_mean(prediction, segments.to(device), len(part))
            targets = targets.to(device)
            mask = torch.isfinite(targets)
            total += float(((prediction - torch.nan_to_num(targets)) ** 2)[mask].sum())
            count += int(mask.sum())
        return total / max(count, 1)

    def _fit_one(self, data, member: int, seed: int, positions, device, resume_state):
        split_rng = np.random.default_rng([seed, 0])
        held = data.split(self.validation_fraction, self.validation_block_mm, split_rng)
        train_units, val_units = np.flatnonzero(~held), np.flatnonzero(held)
        if len(train_units) == 0:
            raise InputError("no training sites left after the validation split; lower "
                             "validation_fraction or validation_block_mm")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._build_module(self.n_genes_)
        module.to(device)
        optimizer = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        positions = positions.to(device)
        all_genes = torch.arange(self.n_genes_, device=device)
        per_step = min(self._units_per_step(data), len(train_units))
        history: list = []
        best_state, best_value, best_step, bad, start = None, math.inf, 0, 0, 0
        if resume_state is not None:
            module.load_state_dict(resume_state["module"])
            optimizer.load_state_dict(resume_state["optimizer"])
            best_state = resume_state["best"]
            best_value, best_step = resume_state["best_value"], resume_state["best_step"]
            bad, start, history = resume_state["bad"], resume_state["step"], resume_state["history"]
            logger.info("member %d resumes at step %d", member, start)
        logger.info("member %d: %d training and %d validation %s, %d per step", member,
                    len(train_units), len(val_units),
                    "sites" if data.kind == "samples" else "parcels", per_step)
        module.train()
        steps = progress(range(start, self.max_steps), desc=f"fit {self.design} [{member + 1}/"
                         f"{self.n_ensemble}]", initial=start, total=self.max_steps)
        train_loss = math.nan
        by_training_loss = self.selection == "training_loss"
        for step in steps:
            rng = np.random.default_rng([seed, 1, step])
            units = train_units if per_step >= len(train_units) else \
                np.sort(rng.choice(train_units, per_step, replace=False))
            train_loss = self._optimisation_step(module, optimizer, data, units, rng, positions,
                                                 all_genes, step)
            done = step + 1
            if done % self.eval_every == 0 or done == self.max_steps:
                module.eval()
                value = (self._evaluate(module, data, val_units, positions, all_genes, seed)
                         if len(val_units) else math.nan)
                criterion = (self._evaluate(module, data, train_units, positions, all_genes, seed)
                             if by_training_loss else value)
                module.train()
                history.append((done, train_loss, value))
                steps.set_postfix(train=f"{train_loss:.4g}", val=f"{value:.4g}")
                if math.isnan(criterion) or criterion < best_value:
                    best_value, best_step, bad = criterion, done, 0
                    best_state = copy.deepcopy(module.state_dict())
                else:
                    bad += 1
                if len(val_units) and not by_training_loss and bad >= self.patience:
                    logger.info("member %d: early stop at step %d (best %d, validation %.4g)",
                                member, done, best_step, best_value)
                    break
            if self.checkpoint_path is not None and done % self.checkpoint_every == 0 \
                    and done < self.max_steps:
                self._save_checkpoint(training={
                    "member": member, "step": done, "module": module.state_dict(),
                    "optimizer": optimizer.state_dict(), "best": best_state,
                    "best_value": best_value, "best_step": best_step, "bad": bad,
                    "history": history})
        if best_state is None:
            best_state, best_step = copy.deepcopy(module.state_dict()), self.max_steps
        module.load_state_dict(best_state)
        module.eval()
        if len(val_units) and not by_training_loss and self.value_scaling == "standard" \
                and best_value >= NO_SKILL_MSE:
            what = "sites" if data.kind == "samples" else "parcels"
            logger.warning(
                "member %d: held-out %s are predicted little better than by each gene's mean "
                "(validation MSE %.2f in standardised units), so the model was kept at step %d "
                "and may underfit the training data; to fit every %s for max_steps instead, use "
                "validation_fraction=0", member, what, best_value, best_step,
                what[:-1])
        logger.info("member %d: kept step %d (%s MSE %.4g, scaled units; last training "
                    "loss %.4g)", member, best_step, "training" if by_training_loss else "validation",
                    best_value, train_loss)
        return module, history, best_step
