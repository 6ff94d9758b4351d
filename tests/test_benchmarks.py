"""Tests of the benchmark scripts' own logic (benchmarks/*.py, benchmarks/gpu_check.sh).

The measurements themselves are benchmarks, not tests: these check option parsing, the
no-GPU exit of the GPU script and the CPU precision path on a tiny network.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_inr  # noqa: E402
import paper_config  # noqa: E402
import run_all  # noqa: E402


def test_paper_config_protocols_option():
    args = paper_config.parse_args(["--protocols", "donor, map", "--out-dir", "x"])
    assert args.protocols == ["donor", "map"]
    with pytest.raises(SystemExit) as raised:
        paper_config.parse_args(["--protocols", "blocked,dnor", "--out-dir", "x"])
    assert raised.value.code == 2


def test_paper_config_site_splits_pick_folds_and_donors():
    class Data:  # the two attributes site_splits reads
        coords = np.random.default_rng(0).uniform(-60, 60, size=(300, 3))
        donors = np.repeat(np.array(["d1", "d2", "d3"], dtype=object), 100)

    args = paper_config.parse_args(["--first-fold", "1", "--max-folds", "2", "--out-dir", "x"])
    assert [s.name for s in paper_config.site_splits(Data, "donor", args)] == ["d2", "d3"]
    assert [s.name for s in paper_config.site_splits(Data, "blocked", args)] == ["fold1", "fold2"]


def test_run_all_lists_the_paper_scripts():
    for name in ("paper-config", "paper-table1"):
        script, arguments, quick = run_all.SCRIPTS[name]
        assert (BENCHMARKS / script).is_file() and "--max-steps" in quick


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the exit without a CUDA device")
def test_gpu_check_exits_cleanly_without_cuda(tmp_path):
    out = tmp_path / "gpu"
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stdout.startswith("gpu_check: no CUDA device") and "nothing run" in done.stdout
    assert not out.exists()


def test_precision_run_on_cpu_compares_bf16_and_skips_tf32(torch_one_thread):
    from brainexpr.models.inr import INRRegressor

    rng = np.random.default_rng(0)
    coords = rng.uniform(-60, 60, size=(80, 3))
    values = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    model = INRRegressor("factorized", n_layers=3, hidden_features=32, n_features=16,
                         max_steps=5, validation_fraction=0, device="cpu", random_state=0)
    model.fit(coords, values)
    tissue = np.zeros(len(coords))
    reference, _ = bench_inr._precision_run(model, "fp32", "cpu", coords, tissue)
    bf16, seconds = bench_inr._precision_run(model, "bf16", "cpu", coords, tissue)
    assert bench_inr._precision_run(model, "tf32", "cpu", coords, tissue) is None
    error = np.abs(bf16 - reference).max()
    assert 0 < error < 0.05 * reference.std() and seconds >= 0   # bf16 really ran, and is close
    assert model.precision == "fp32"
