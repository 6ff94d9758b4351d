"""Bad inputs and faults through the real command line: one line, exit 2, nothing lost.

Every case runs ``brainexpr`` in its own process and asserts the exit code, exactly one
line on stderr at the default log level (the error fires before any progress line), no
traceback, and that a canary file placed
in the output folder beforehand is still there, unchanged. To keep the suite fast, each
case's process is forked from a parent that imported brainexpr once, then calls the same
``main`` the ``brainexpr`` script calls; :func:`test_real_entry_point` runs a few cases
through ``python -m brainexpr`` to cover the script itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from brainexpr.cli import main
from brainexpr.models.checkpoint import payload_checksum, read_model_file
from brainexpr.outputs import MANIFEST, folder_lock

CANARY = "canary.txt"
VERBOSITY: list[str] = []  # default log level: an INFO line before the error would fail


def _import_everything() -> None:
    """Import what the commands import, once, so that forked cases start at once."""
    import importlib

    from brainexpr.cli import build_parser

    build_parser()  # imports every subcommand and its workflow
    for module in ("brainexpr.workflows.run", "brainexpr.workflows.associate",
                   "brainexpr.workflows.vae", "brainexpr.workflows.view",
                   "brainexpr.workflows.benchmark", "brainexpr.workflows.phantom",
                   "brainexpr.workflows.ahba", "brainexpr.models.registry", "brainexpr.maps",
                   "brainexpr.datasets.validate", "brainexpr.models.inr",
                   "brainexpr.models.kriging", "brainexpr.atlas.tissue", "scipy.ndimage"):
        importlib.import_module(module)


_import_everything()


def run_cli(argv, cwd) -> tuple[int, str, str]:
    """Run ``brainexpr argv`` in a forked process; return (exit code, stdout, stderr)."""
    out_path, err_path = Path(cwd) / ".stdout", Path(cwd) / ".stderr"
    pid = os.fork()
    if pid == 0:  # child: behave like the console script
        code = 1
        try:
            os.chdir(cwd)
            with open(out_path, "w") as out, open(err_path, "w") as err:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = os.fdopen(1, "w", closefd=False)
                sys.stderr = os.fdopen(2, "w", closefd=False)
                try:
                    code = main(list(argv))
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                except BaseException:
                    traceback.print_exc()
                    code = 1
                sys.stdout.flush()
                sys.stderr.flush()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    out_path.unlink()
    err_path.unlink()
    return code, stdout, stderr


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, data_dir):
    """Tiny good and bad input files, a fitted kNN model and an earlier output folder."""
    from brainexpr.datasets import load_sample_celltypes

    root = tmp_path_factory.mktemp("inputs")
    samples, _ = load_sample_celltypes(data_dir)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(samples), 60, replace=False)
    coords = samples[["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]].to_numpy()[rows]
    good = pd.DataFrame(coords, columns=["mni_x", "mni_y", "mni_z"])
    good["GENEA"] = rng.normal(size=60)
    good["GENEB"] = rng.normal(size=60)
    good.to_csv(root / "good.csv", index=False)

    def variant(name, column, row, value):
        table = good.astype(object)
        table.loc[row, column] = value
        table.to_csv(root / name, index=False)

    variant("text_cell.csv", "GENEA", 3, "abc")
    variant("huge.csv", "GENEA", 3, 1e308)
    variant("inf.csv", "GENEB", 5, "inf")
    variant("text_coord.csv", "mni_x", 2, "left")
    variant("nan_coord.csv", "mni_y", 4, "")
    variant("far_coord.csv", "mni_x", 4, 900)
    table = good.copy()
    table["tissue_class"] = 7
    table.to_csv(root / "bad_tissue.csv", index=False)
    dup = good.copy()
    dup.columns = ["mni_x", "mni_y", "mni_z", "GENEA", "GENEA"]
    dup.to_csv(root / "dup.csv", index=False)
    good.to_csv(root / "semi.csv", index=False, sep=";")
    good.drop(columns="mni_z").to_csv(root / "no_z.csv", index=False)
    good.iloc[:0].to_csv(root / "header.csv", index=False)
    good[["mni_x", "mni_y", "mni_z"]].to_csv(root / "no_genes.csv", index=False)
    (root / "empty.csv").write_text("")
    (root / "blank.csv").write_text("\n\n  \n")
    (root / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (root / "excel.csv").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    (root / "latin1.csv").write_bytes("mni_x,mni_y,mni_z,G\xe9NE\n1,2,3,4\n".encode("latin-1")
                                      + b"\xe9" * 10 + b",1,1,1\n")
    (root / "ragged.csv").write_text((root / "good.csv").read_text() + "1,2,3,4,5,6,7\n")
    (root / "not_a_model.pt").write_text("hello")
    (root / "genes.txt").write_text("APOE\nMAPT\n")
    (root / "broken.toml").write_text("genes = [unclosed\n")
    (root / "unknown_key.toml").write_text("no_such_option = 3\n")
    regional = pd.DataFrame({"region": ["L_bankssts", "L_caudalanteriorcingulate"],
                             "value": [1.0, "high"]})
    regional.to_csv(root / "region_text.csv", index=False)
    pd.DataFrame({"region": ["L_bankssts", "L_bankssts"], "value": [1.0, 2.0]}) \
        .to_csv(root / "region_dup.csv", index=False)
    pd.DataFrame({"region": [], "value": []}).to_csv(root / "region_header.csv", index=False)

    code, _, err = run_cli(["-q", "--progress", "off", "fit", "--data-dir", str(data_dir),
                            "--source", str(root / "good.csv"), "--model", "knn",
                            "--out", str(root / "model.pt")], root)
    assert code == 0, err
    payload = torch.load(root / "model.pt", weights_only=True)
    damaged = dict(payload, arrays={k: v.clone() for k, v in payload["arrays"].items()})
    name = next(k for k, v in damaged["arrays"].items() if v.is_floating_point() and v.numel())
    damaged["arrays"][name].view(-1)[0] = float("nan")
    torch.save(damaged, root / "damaged.pt")
    inconsistent = dict(payload, header=json.dumps({"class": "KNNInterpolator"}))
    inconsistent["checksum"] = payload_checksum(inconsistent)
    torch.save(inconsistent, root / "inconsistent.pt")
    raw = (root / "model.pt").read_bytes()
    (root / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    code, _, err = run_cli(["-q", "--progress", "off", "predict", "--data-dir", str(data_dir),
                            "--model", str(root / "model.pt"), "--out-dir",
                            str(root / "maps")], root)
    assert code == 0, err
    return root


# (id, arguments, expected text in the error line). In the arguments, ``IN/`` is the
# inputs folder, ``OUT`` the output folder holding the canary, ``FILE`` a plain file,
# ``DATA`` the reference data folder.
CASES = [
    # fit: training tables
    ("fit-text-cell", "fit --source IN/text_cell.csv --model knn --out OUT/m.pt",
     "line 5, column 'GENEA': 'abc' is not a number"),
    ("fit-huge-value", "fit --source IN/huge.csv --model knn --out OUT/m.pt",
     "not finite or beyond"),
    ("fit-inf", "fit --source IN/inf.csv --model knn --out OUT/m.pt", "line 7, column 'GENEB'"),
    ("fit-duplicated-gene", "fit --source IN/dup.csv --model knn --out OUT/m.pt",
     "column 'GENEA' appears twice"),
    ("fit-semicolons", "fit --source IN/semi.csv --out OUT/m.pt", "semicolon-separated"),
    ("fit-no-mni-z", "fit --source IN/no_z.csv --out OUT/m.pt", "but no mni_z"),
    ("fit-header-only", "fit --source IN/header.csv --out OUT/m.pt", "no data rows"),
    ("fit-no-genes", "fit --source IN/no_genes.csv --model knn --out OUT/m.pt",
     "no gene column"),
    ("fit-text-coordinate", "fit --source IN/text_coord.csv --model knn --out OUT/m.pt",
     "column 'mni_x': 'left' is not a number"),
    ("fit-missing-coordinate", "fit --source IN/nan_coord.csv --model knn --out OUT/m.pt",
     "column 'mni_y': the value is missing"),
    ("fit-far-coordinate", "fit --source IN/far_coord.csv --model knn --out OUT/m.pt",
     "outside the MNI152 brain"),
    ("fit-bad-tissue", "fit --source IN/bad_tissue.csv --model knn --out OUT/m.pt",
     "column 'tissue_class'"),
    ("fit-empty", "fit --source IN/empty.csv --out OUT/m.pt", "is empty"),
    ("fit-blank", "fit --source IN/blank.csv --out OUT/m.pt", "is empty"),
    ("fit-binary", "fit --source IN/binary.csv --out OUT/m.pt", "binary file"),
    ("fit-excel", "fit --source IN/excel.csv --out OUT/m.pt", "zip or Excel"),
    ("fit-not-utf8", "fit --source IN/latin1.csv --out OUT/m.pt", "not UTF-8"),
    ("fit-ragged", "fit --source IN/ragged.csv --model knn --out OUT/m.pt",
     "as many cells as the header"),
    ("fit-missing-source", "fit --source IN/nothing.csv --out OUT/m.pt", "does not exist"),
    ("fit-lower-case-gene", "fit --source IN/good.csv --genes genea --model knn --out OUT/m.pt",
     "genea (closest: GENEA"),
    ("fit-bad-model", "fit --model nonsense --out OUT/m.pt", "invalid choice"),
    ("fit-bad-integer", "fit --max-steps 1.5 --out OUT/m.pt", "invalid int value"),
    # fit: output paths, checked before training
    ("fit-out-is-folder", "fit --source IN/good.csv --model knn --out OUT", "existing folder"),
    ("fit-out-below-file", "fit --source IN/good.csv --model knn --out FILE/m.pt",
     "which is a file"),
    ("fit-out-unwritable", "fit --source IN/good.csv --model knn --out /proc/m.pt",
     "not writable"),
    ("fit-out-foreign-file", "fit --source IN/good.csv --model knn --out OUT/canary.txt",
     "brainexpr did not write it"),
    # predict
    ("predict-user-folder", "predict --model IN/model.pt --out-dir OUT",
     "brainexpr did not write"),
    ("predict-out-is-file", "predict --model IN/model.pt --out-dir FILE", "is an existing file"),
    ("predict-out-below-file", "predict --model IN/model.pt --out-dir FILE/maps",
     "which is a file"),
    ("predict-missing-model", "predict --model IN/none.pt --out-dir OUT/maps", "does not exist"),
    ("predict-not-a-model", "predict --model IN/not_a_model.pt --out-dir OUT/maps",
     "not a readable brainexpr model file"),
    ("predict-truncated-model", "predict --model IN/truncated.pt --out-dir OUT/maps",
     "not a readable brainexpr model file"),
    ("predict-damaged-model", "predict --model IN/damaged.pt --out-dir OUT/maps", "is damaged"),
    ("predict-inconsistent-model", "predict --model IN/inconsistent.pt --out-dir OUT/maps",
     "corrupt"),
    ("predict-lower-case-gene", "predict --model IN/model.pt --genes geneb --out-dir OUT/maps",
     "geneb (closest: GENEB"),
    ("predict-unknown-gene", "predict --model IN/model.pt --genes XYZ --out-dir OUT/maps",
     "XYZ (closest: none)"),
    ("predict-std-without-ensemble", "predict --model IN/model.pt --std --out-dir OUT/maps",
     "std maps need an uncertainty"),
    ("predict-bad-resolution", "predict --model IN/model.pt --resolution x --out-dir OUT/maps",
     "expected an integer"),
    ("predict-bad-precision", "predict --model IN/model.pt --precision fp8 --out-dir OUT/maps",
     "invalid choice"),
    ("predict-into-other-output", "predict --model IN/model.pt --out-dir IN", "did not write"),
    # embed
    ("embed-empty-source", "embed --source IN/empty.csv --out-dir OUT/axis", "is empty"),
    ("embed-user-folder", "embed --out-dir OUT", "brainexpr did not write"),
    ("embed-out-is-file", "embed --out-dir FILE", "is an existing file"),
    # parcellate
    ("parcellate-out-is-folder", "parcellate --model IN/model.pt --out OUT", "existing folder"),
    ("parcellate-foreign-file", "parcellate --model IN/model.pt --out OUT/canary.txt",
     "brainexpr did not write it"),
    ("parcellate-missing-model", "parcellate --model IN/none.pt --out OUT/r.csv",
     "does not exist"),
    ("parcellate-bad-atlas", "parcellate --model IN/model.pt --atlas mars --out OUT/r.csv",
     "invalid choice"),
    # phantom
    ("phantom-user-folder", "phantom --n-genes 2 --out-dir OUT", "brainexpr did not write"),
    ("phantom-out-is-file", "phantom --n-genes 2 --out-dir FILE", "is an existing file"),
    # view
    ("view-static-into-user-folder", "view IN/maps --static --no-browser --out OUT",
     "brainexpr did not write"),
    ("view-static-into-its-input", "view IN/maps --static --no-browser --out IN/maps",
     "holds the output of 'brainexpr predict'"),
    ("view-missing-folder", "view IN/nothing --static --no-browser --out OUT/v", "nothing"),
    # associate
    ("associate-empty-gene-list", "associate --genes IN/empty.csv --out OUT/a", "is empty"),
    ("associate-binary-gene-list", "associate --genes IN/binary.csv --out OUT/a", "binary"),
    ("associate-user-folder", "associate --genes IN/genes.txt --out OUT",
     "brainexpr did not write"),
    ("associate-text-in-expression",
     "associate --genes IN/genes.txt --expression IN/region_text.csv --out OUT/a",
     "'high' is not a number"),
    ("associate-binary-target", "associate --genes IN/genes.txt --target IN/binary.csv "
     "--out OUT/a", "binary file"),
    # vae
    ("vae-empty-target", "vae --target IN/empty.csv --out OUT/v", "is empty"),
    ("vae-header-only-target", "vae --target IN/region_header.csv --out OUT/v", "no data rows"),
    ("vae-binary-target", "vae --target IN/binary.csv --out OUT/v", "binary file"),
    ("vae-duplicated-region", "vae --target IN/region_dup.csv --out OUT/v",
     "appears more than once"),
    ("vae-out-is-file", "vae --out FILE", "is an existing file"),
    # benchmark, ahba, info, fetch
    ("benchmark-user-folder", "benchmark --quick --out-dir OUT", "brainexpr did not write"),
    ("benchmark-bad-method", "benchmark --methods astrology --out-dir OUT/b", "astrology"),
    ("benchmark-ablation-user-folder", "benchmark --ablation --quick --out-dir OUT",
     "brainexpr did not write"),
    ("benchmark-ablation-zero-steps", "benchmark --ablation --max-steps 0 --out-dir OUT/b",
     "max_steps must be a positive integer"),
    ("ahba-user-folder", "ahba IN --out OUT", "brainexpr did not write"),
    ("ahba-missing-raw", "ahba IN/nothing --out OUT/a", "nothing"),
    ("info-out-below-file", "info --out FILE/summary", "which is a file"),
    ("fetch-unknown-dataset", "fetch no-such-dataset", "no-such-dataset"),
    # atlas
    ("atlas-build-into-user-folder", "atlas build --genes APOE --out OUT",
     "is not a gene-atlas store; choose another --out"),
    ("atlas-build-bad-chunks", "atlas build --chunks 3 --out OUT/a.zarr", "GENES,VOXELS"),
    ("atlas-get-missing-store", "atlas get IN/nothing.zarr APOE --out-dir OUT/m",
     "not a gene-atlas store"),
    ("atlas-parcellate-foreign-file", "atlas parcellate IN/nothing.zarr --out OUT/canary.txt",
     "brainexpr did not write it"),
    ("atlas-match-missing-store", "atlas match IN/nothing.zarr IN/genes.txt --out-dir OUT",
     "not a gene-atlas store"),
    # run
    ("run-user-folder", "run --no-vae --benchmark none --out OUT", "brainexpr did not write"),
    ("run-out-is-file", "run --out FILE", "is an existing file"),
    ("run-empty-source", "run --source IN/empty.csv --out OUT/r", "is empty"),
    ("run-broken-config", "run --config IN/broken.toml --out OUT/r", "not valid TOML"),
    ("run-unknown-config-key", "run --config IN/unknown_key.toml --out OUT/r",
     "unknown config keys"),
    ("run-bad-resolution", "run --resolution 3 --out OUT/r", "resolution (mm) must be one of 1, 2, got 3"),
    ("unknown-subcommand", "frobnicate", "invalid choice"),
]


def _argv(text: str, inputs: Path, out: Path, plain_file: Path, data_dir) -> list[str]:
    words = []
    for word in text.split():
        word = word.replace("IN/", f"{inputs}/").replace("OUT", str(out))
        word = word.replace("FILE", str(plain_file))
        words.append(str(inputs) if word == "IN" else word)
    command, rest = words[0], words[1:]
    if command == "frobnicate":
        return ["-q", command]
    return [*VERBOSITY, "--progress", "off", command, "--data-dir", str(data_dir), *rest]


def _check_one_line(code, err, expected, canary, content):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert expected in lines[0], lines[0]
    assert canary.read_text() == content


@pytest.mark.parametrize("case,arguments,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line(case, arguments, expected, inputs, data_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    canary = out / CANARY
    canary.write_text(case)
    plain_file = tmp_path / "plain_file"
    plain_file.write_text("mine")
    code, _, err = run_cli(_argv(arguments, inputs, out, plain_file, data_dir), tmp_path)
    _check_one_line(code, err, expected, canary, case)
    assert plain_file.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "plain_file"]  # no leftovers


def test_at_least_sixty_cases_cover_every_subcommand():
    from brainexpr.cli import SUBCOMMANDS

    assert len(CASES) >= 60
    covered = {arguments.split()[0] for _, arguments, _ in CASES}
    assert set(SUBCOMMANDS) <= covered


@pytest.mark.parametrize("case", ["fit-semicolons", "predict-user-folder"])
def test_real_entry_point(case, inputs, data_dir, tmp_path):
    _, arguments, expected = next(c for c in CASES if c[0] == case)
    out = tmp_path / "out"
    out.mkdir()
    (out / CANARY).write_text(case)
    argv = _argv(arguments, inputs, out, tmp_path / "plain_file", data_dir)
    result = subprocess.run([sys.executable, "-m", "brainexpr", *argv], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    _check_one_line(result.returncode, result.stderr, expected, out / CANARY, case)


# --------------------------------------------------------------------------- output policy
def _predict(inputs, data_dir, out, *extra):
    return run_cli(["-q", "--progress", "off", "predict", "--data-dir", str(data_dir),
                    "--model", str(inputs / "model.pt"), "--out-dir", str(out), *extra],
                   out.parent)


def test_overwrite_replaces_only_brainexpr_files(inputs, data_dir, tmp_path):
    out = tmp_path / "mixed"
    out.mkdir()
    (out / CANARY).write_text("mine")
    code, _, err = _predict(inputs, data_dir, out, "--overwrite")
    assert code == 0, err
    first = json.loads((out / MANIFEST).read_text())["entries"]
    assert CANARY not in first and "maps.tsv" in first
    code, _, err = _predict(inputs, data_dir, out, "--overwrite", "--genes", "GENEA")
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert CANARY in names and (out / CANARY).read_text() == "mine"
    assert not any("GENEB" in n for n in names)  # the earlier, now stale map was brainexpr's
    (out / "maps.tsv").unlink()
    (out / "maps.tsv").write_text("the user's file now")
    del first
    json_entries = json.loads((out / MANIFEST).read_text())["entries"]
    json_entries.pop("maps.tsv")
    (out / MANIFEST).write_text(json.dumps({"entries": json_entries}))
    code, _, err = _predict(inputs, data_dir, out, "--overwrite")
    assert code == 2 and "maps.tsv, which brainexpr did not write" in err
    assert (out / "maps.tsv").read_text() == "the user's file now"


def test_own_earlier_output_is_replaced_without_overwrite(inputs, data_dir, tmp_path):
    out = tmp_path / "maps"
    assert _predict(inputs, data_dir, out)[0] == 0
    assert _predict(inputs, data_dir, out, "--genes", "GENEB")[0] == 0
    assert sorted(p.name for p in out.iterdir() if "gene-" in p.name) == [
        "gene-GENEB_model-knn_res-2mm_space-MNI152_expr.nii.gz"]


def _hold_lock(folder: Path):
    """A separate process that holds the lock of ``folder`` until killed."""
    code = ("import sys, time; from brainexpr.outputs import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_second_writer_is_refused_and_a_dead_lock_is_taken_over(inputs, data_dir, tmp_path):
    out = tmp_path / "maps"
    holder = _hold_lock(out)
    try:
        code, _, err = _predict(inputs, data_dir, out)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert f"being written by PID {holder.pid}" in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    stale = tmp_path / ".maps.staging-k1lled9x"
    stale.mkdir()
    (stale / "half.nii.gz").write_bytes(b"partial")
    code, _, err = _predict(inputs, data_dir, out)
    assert code == 0, err
    assert not stale.exists() and not (tmp_path / ".maps.lock").exists()


def test_run_refuses_a_locked_folder_before_writing_its_log(data_dir, tmp_path):
    out = tmp_path / "outputs"
    holder = _hold_lock(out)
    try:
        code, _, err = run_cli(["-q", "run", "--data-dir", str(data_dir), "--no-vae",
                                "--benchmark", "none", "--out", str(out)], tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert code == 2 and f"PID {holder.pid}" in err and len(err.strip().splitlines()) == 1
    assert not (out / "run.log").exists()


def test_folder_lock_is_reentrant_in_one_process(tmp_path):
    with folder_lock(tmp_path / "x"):
        with folder_lock(tmp_path / "x"):
            pass
        assert (tmp_path / ".x.lock").exists()
    assert not (tmp_path / ".x.lock").exists()


# --------------------------------------------------------------------------- kill -9
@pytest.mark.slow
def test_fit_resume_after_kill_9_is_bit_identical(inputs, data_dir, tmp_path):
    """An INR fit killed with SIGKILL resumes from its model file to the same weights."""
    common = ["-q", "--progress", "off", "fit", "--data-dir", str(data_dir), "--source",
              str(inputs / "good.csv"), "--model", "factorized", "--n-layers", "2",
              "--hidden-features", "16", "--n-features", "8", "--learning-rate", "1e-3",
              "--max-steps", "1500", "--validation-fraction", "0", "--checkpoint-every", "25",
              "--device", "cpu"]
    reference = tmp_path / "reference.pt"
    assert run_cli([*common, "--out", str(reference)], tmp_path)[0] == 0
    killed = tmp_path / "killed.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "brainexpr", *common, "--out", str(killed)],
                               env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not killed.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if process.returncode != -signal.SIGKILL:
        pytest.skip("the fit finished before it could be killed")
    code, _, err = run_cli([*common, "--out", str(killed), "--resume"], tmp_path)
    assert code == 0, err
    a = read_model_file(reference).state["members"]
    b = read_model_file(killed).state["members"]
    assert len(a) == len(b) == 1
    for key in a[0]:
        assert torch.equal(a[0][key], b[0][key]), key


@pytest.mark.slow
def test_run_resumes_after_kill_9_and_removes_its_leftovers(inputs, data_dir, tmp_path):
    """A run killed with SIGKILL during its maps step resumes to the same maps; the staging
    folders the killed process left are removed by the next run."""
    import nibabel as nib

    def command(out):
        return ["-q", "--progress", "off", "run", "--data-dir", str(data_dir), "--source",
                str(inputs / "good.csv"), "--model", "knn", "--no-vae", "--benchmark", "none",
                "--no-viewer", "--genes-1mm", "GENEA", "--out", str(out)]

    reference = tmp_path / "reference"
    assert run_cli(command(reference), tmp_path)[0] == 0
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "brainexpr", *command(out)],
                               stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline and \
            not list(out.glob(".maps.staging-*")):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if process.returncode != -signal.SIGKILL:
        pytest.skip("the run finished before it could be killed")
    assert list(out.glob(".maps.staging-*")) and (out / "fit" / "step.json").is_file()
    code, stdout, err = run_cli(command(out), tmp_path)
    assert code == 0, err
    assert "fit" in stdout and "reused" in stdout  # the finished steps were not redone
    assert not list(out.glob(".*staging-*")) and not (tmp_path / ".killed.lock").exists()
    for path in sorted((reference / "maps").rglob("*.nii.gz")):
        other = out / "maps" / path.relative_to(reference / "maps")
        assert np.array_equal(np.asanyarray(nib.load(path).dataobj),
                              np.asanyarray(nib.load(other).dataobj)), path.name
