"""Resumable, hashed pipeline steps for the main job.

A step writes into its own folder under the run's output folder. When it finishes, a
``step.json`` records a hash of everything that determines its result (its parameters and
the hashes of the steps it depends on). Running again skips a step whose recorded hash
matches and redoes it (and everything downstream) otherwise. A step is built in a staging
folder and moved into place only when it succeeds, so an interrupted run leaves no
half-written step behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .._version import __version__
from ..utils import staged_directory

logger = logging.getLogger(__name__)

STEP_FILE = "step.json"


def stable_hash(payload) -> str:
    """Return a short SHA-256 of a JSON-serialisable payload (sorted keys)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class StepResult:
    """Outcome of one step: its folder, hash, whether it was reused, and its summary."""

    name: str
    folder: Path
    digest: str
    reused: bool
    seconds: float
    summary: dict = field(default_factory=dict)


def run_step(name: str, out_dir: Path, params: dict, upstream: list[StepResult],
             func: Callable[[Path], dict], force: bool = False) -> StepResult:
    """Run ``func(folder) -> summary`` unless an identical finished step exists.

    Parameters
    ----------
    name : str
        Step name; also its folder name under ``out_dir``.
    out_dir : Path
    params : dict
        Everything that determines the result of this step (JSON-serialisable).
    upstream : list of StepResult
        Steps whose outputs this one reads; their hashes enter this step's hash.
    func : callable
        Builds the step's outputs in the folder it is given and returns a summary dict.
    force : bool
        Redo the step even if it is up to date.
    """
    folder = Path(out_dir) / name
    digest = stable_hash({"step": name, "params": params, "version": __version__,
                          "upstream": [u.digest for u in upstream]})
    record = folder / STEP_FILE
    if not force and record.is_file():
        try:
            saved = json.loads(record.read_text())
        except json.JSONDecodeError:
            saved = {}
        if saved.get("digest") == digest:
            logger.info("step %s is up to date (reusing %s)", name, folder)
            return StepResult(name, folder, digest, True, 0.0, saved.get("summary", {}))
    logger.info("step %s: running", name)
    start = time.perf_counter()
    with staged_directory(folder) as stage:
        summary = func(stage) or {}
        seconds = time.perf_counter() - start
        (stage / STEP_FILE).write_text(json.dumps(
            {"step": name, "digest": digest, "params": params, "seconds": round(seconds, 2),
             "summary": summary, "brainexpr_version": __version__}, indent=1, default=str))
    logger.info("step %s: done in %.1f s", name, seconds)
    return StepResult(name, folder, digest, False, seconds, summary)
