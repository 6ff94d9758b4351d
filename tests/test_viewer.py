"""Tests of the map viewer: map discovery, the site files, the server, and the page end to end.

The end-to-end test drives Debian's headless Chromium (software WebGL 2) through the
DevTools pipe: it opens the static page, picks another gene, toggles the uncertainty map,
checks that the rendered canvas changed each time, and clicks a point to read its value
and region, which it compares with values read in Python.
"""

from __future__ import annotations

import base64
import gzip
import io
import ipaddress
import json
import re
import socket
import threading
import urllib.error
import urllib.request

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainexpr.atlas import mni_grid, resample_to_grid, voxel_to_mni
from brainexpr.cli import main
from brainexpr.errors import InputError
from brainexpr.viewer import assets
from brainexpr.viewer.headless import HeadlessChromium, find_chromium
from brainexpr.viewer.maps import (MapName, display_image, find_maps, parse_map_filename,
                                   select_maps)
from brainexpr.viewer.server import make_server
from brainexpr.viewer.site import build_site


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Like the suite's network blocker, but the viewer's own server on loopback is allowed."""
    original = socket.socket.connect

    def guard(self, address, *args, **kwargs):
        host = address[0] if isinstance(address, tuple) else address
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise RuntimeError("tests must not use the network")
        return original(self, address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guard)


# ---------------------------------------------------------------------------- fixtures
def _mm(resolution):
    shape, affine = mni_grid(resolution)
    return voxel_to_mni(np.indices(shape).reshape(3, -1).T, affine).reshape(*shape, 3), affine


def _fields(resolution=2):
    mm, affine = _mm(resolution)
    return {
        "APOE": (0.5 + 0.4 * np.sin(mm[..., 0] / 12.0), 0.05 + 0.02 * np.cos(mm[..., 2] / 10.0)),
        "TREM2": (0.2 + 0.7 * np.exp(-((mm[..., 1] + 20) ** 2 + mm[..., 2] ** 2) / 1500.0),
                  0.03 + 0.01 * (mm[..., 1] + 126) / 220.0),
        "HLA-DRB1": (0.3 + 0.002 * mm[..., 2] + 0.0005 * mm[..., 0], None),
    }, affine


def _write_maps(folder, resolution=2, model="factorized", genes=None):
    """Write BIDS-like maps (and a maps.tsv naming the exact gene symbols) into ``folder``."""
    fields, affine = _fields(resolution)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for gene, (expr, std) in fields.items():
        if genes is not None and gene not in genes:
            continue
        label = re.sub(r"[^A-Za-z0-9]", "", gene)
        for kind, data in (("expr", expr), ("std", std)):
            if data is None:
                continue
            name = f"gene-{label}_model-{model}_res-{resolution}mm_space-MNI152_{kind}.nii.gz"
            nib.save(nib.Nifti1Image(data.astype(np.float32), affine), folder / name)
            rows.append({"file": name, "volume": 0, "gene": gene, "kind": kind})
    pd.DataFrame(rows).to_csv(folder / "maps.tsv", sep="\t", index=False)
    return fields


@pytest.fixture
def synthetic_site(tmp_path, tiny_atlas):
    """A viewer site on synthetic maps, template, brain mask and a four-box atlas (no data folder)."""
    _write_maps(tmp_path / "out" / "maps")
    atlas_image, regions = tiny_atlas
    shape, affine = mni_grid(2)
    mm, _ = _mm(2)
    brain = (mm[..., 0] / 70) ** 2 + ((mm[..., 1] + 18) / 95) ** 2 + ((mm[..., 2] - 10) / 70) ** 2 < 1
    template = nib.Nifti1Image((brain * (100 + mm[..., 2])).astype(np.float32), affine)
    mask = nib.Nifti1Image(brain.astype(np.uint8), affine)
    maps = select_maps(find_maps(tmp_path / "out"))
    return build_site(maps, template, mask, atlas_image, regions), brain


def _decode_data_script(payload: bytes):
    text = payload.decode("ascii")
    match = re.fullmatch(r'\(window\.brainexprData = window\.brainexprData \|\| \{\}\)'
                         r'\["(.+)"\] = "(.*)";\n', text)
    assert match, text[:200]
    raw = gzip.decompress(base64.b64decode(match.group(2)))
    return match.group(1), nib.Nifti1Image.from_bytes(raw)


# ---------------------------------------------------------------------------- file names
def test_parse_map_filename():
    assert parse_map_filename("maps/gene-APOE_model-factorized_res-2mm_space-MNI152_std.nii.gz") == \
        MapName("APOE", "factorized", 2, "MNI152", "std")
    assert parse_map_filename("gene-HLA-DRB1_model-separate_res-1mm_space-MNI152_expr.nii") == \
        MapName("HLA-DRB1", "separate", 1, "MNI152", "expr")
    for name in ("genes-12_model-factorized_res-2mm_space-MNI152_expr.nii.gz",  # a 4-D stack
                 "gene-APOE_model-factorized_res-2mm_space-MNI152_mean.nii.gz",
                 "gene-APOE_res-2mm_space-MNI152_expr.nii.gz", "gene-APOE_model-x_res-2mm_expr.nii.gz",
                 "gene-APOE_model-factorized_res-2mm_space-MNI152_expr.nii.gz.part"):
        assert parse_map_filename(name) is None, name


def test_find_and_select_maps(tmp_path, caplog):
    _write_maps(tmp_path / "run" / "maps")
    one_mm = tmp_path / "run" / "maps1mm"  # find_maps reads names only: empty files will do
    one_mm.mkdir()
    for kind in ("expr", "std"):
        (one_mm / f"gene-APOE_model-factorized_res-1mm_space-MNI152_{kind}.nii.gz").write_bytes(b"")
    (tmp_path / "run" / "maps" / "gene-GFAP_model-factorized_res-2mm_space-MNI152_std.nii.gz").write_bytes(b"")
    maps = find_maps(tmp_path / "run")
    # exact symbols come from maps.tsv (the file label is HLADRB1); the orphan std map is ignored
    assert sorted(maps.loc[maps["resolution"] == 2, "gene"]) == ["APOE", "HLA-DRB1", "TREM2"]
    assert "GFAP" not in set(maps["gene"]) and "without an expression map" in caplog.text
    assert maps.loc[maps["gene"] == "HLA-DRB1", "std"].isna().all()

    assert set(select_maps(maps)["resolution"]) == {2}  # 2 mm preferred
    assert list(select_maps(maps, resolution=1)["gene"]) == ["APOE"]
    assert list(select_maps(maps, genes=["TREM2", "APOE"])["gene"]) == ["TREM2", "APOE"]
    with pytest.raises(InputError, match=r"resolution \(mm\) of the available maps must be one of 2, got 1"):
        select_maps(select_maps(maps, resolution=2), resolution=1)
    with pytest.raises(InputError, match=r"model of the 2 mm maps must be one of 'factorized', got 'siren'"):
        select_maps(maps, model="siren")
    with pytest.raises(InputError, match="genes without 2 mm maps: GFAP"):
        select_maps(maps, genes=["GFAP"])

    with pytest.raises(InputError, match="does not exist"):
        find_maps(tmp_path / "absent")
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "genes-3_model-factorized_res-2mm_space-MNI152_expr.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match="4-D stacks"):
        find_maps(stacks)


def test_display_image_hides_background_only():
    shape, affine = mni_grid(2)
    data = np.linspace(-1, 1, np.prod(shape), dtype=np.float32).reshape(shape)
    data[0, 0, 0] = 0.0
    data[1, 0, 0] = np.inf
    mask = np.ones(shape, bool)
    mask[:, :10] = False
    shown = np.asarray(display_image(nib.Nifti1Image(data, affine), mask).dataobj)
    hidden = ~mask | (data == 0) | ~np.isfinite(data)
    assert np.isnan(shown[hidden]).all()
    np.testing.assert_array_equal(shown[~hidden], data[~hidden])
    with pytest.raises(InputError, match="brain-mask grid"):
        display_image(nib.Nifti1Image(data, affine), mask[:, :, :5])


# ---------------------------------------------------------------------------- site and server
def test_site_files_round_trip(synthetic_site):
    site, brain = synthetic_site
    manifest = site.manifest()
    assert [m["gene"] for m in manifest["maps"]] == ["APOE", "HLA-DRB1", "TREM2"]
    assert manifest["maps"][1]["std"] is None  # no uncertainty map for HLA-DRB1
    assert manifest["labels"] == {"1": "a", "2": "b", "3": "c", "4": "d"}
    inverse = np.array(manifest["inverse_affine"])
    np.testing.assert_allclose(inverse @ site.template.affine, np.eye(4), atol=1e-9)

    files = site.files()
    assert files[:2] == ["index.html", assets.BUNDLE_NAME]
    key, image = _decode_data_script(site.read("data/gene-TREM2-model-factorized-expr.js"))
    assert key == "gene-TREM2-model-factorized-expr"
    shown = np.asarray(image.dataobj)
    expected = _fields(2)[0]["TREM2"][0].astype(np.float32)
    np.testing.assert_array_equal(shown[brain], expected[brain])  # exact values inside the brain
    assert np.isnan(shown[~brain]).all()
    np.testing.assert_allclose(image.affine, site.template.affine)
    _, atlas = _decode_data_script(site.read("data/atlas.js"))
    assert set(np.unique(np.asarray(atlas.dataobj))) == {0, 1, 2, 3, 4}

    page = site.read("index.html").decode("utf-8")
    embedded = re.search(r'<script type="application/json" id="brainexpr-manifest">(.*?)</script>', page, re.S)
    assert json.loads(embedded.group(1)) == json.loads(json.dumps(manifest))
    assert f'<script src="{assets.BUNDLE_NAME}"></script>' in page
    for bad in ("data/../../etc/passwd.js", "data/unknown.js", "maps.tsv", "/index.html"):
        with pytest.raises(KeyError):
            site.read(bad)


def test_server_serves_the_site_on_loopback(synthetic_site):
    site, _ = synthetic_site
    with pytest.raises(InputError, match="loopback"):
        make_server(site, host="0.0.0.0", port=0)
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        with urllib.request.urlopen(base, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/html")
            assert b"brainexpr-manifest" in response.read()
        with urllib.request.urlopen(base + "data/template.js", timeout=10) as response:
            assert _decode_data_script(response.read())[0] == "template"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(base + "data/../../../etc/passwd", timeout=10)
        with pytest.raises(InputError, match="already in use"):
            make_server(site, port=server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_missing_bundle_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv(assets.ENV_VAR, raising=False)
    monkeypatch.setattr(assets, "STATIC_DIR", tmp_path)
    with pytest.raises(assets.ViewerAssetError, match=r"python -m brainexpr\.viewer\.assets"):
        assets.niivue_bundle_path()
    monkeypatch.setenv(assets.ENV_VAR, str(tmp_path / "nowhere.js"))
    with pytest.raises(assets.ViewerAssetError, match="does not exist"):
        assets.niivue_bundle_path()


def test_cli_reports_bad_folder(tmp_path, capsys):
    assert main(["view", str(tmp_path / "absent"), "--static", "--no-browser"]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------- end to end
def _png_array(payload: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(payload), format="png")[..., :3]


def _changed_fraction(before: bytes, after: bytes) -> float:
    a, b = _png_array(before), _png_array(after)
    assert a.shape == b.shape
    return float((np.abs(a - b).max(axis=2) > 0.05).mean())


@pytest.mark.slow
def test_viewer_page_end_to_end_in_headless_chromium(tmp_path, data_dir):
    if find_chromium() is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium); "
                    "the viewer's browser test needs it")
    bundle = assets.niivue_bundle_path()  # a missing bundle is a failed set-up, not a skip
    assert bundle.stat().st_size > 1_000_000
    fields = _write_maps(tmp_path / "run" / "maps")
    out = tmp_path / "viewer"
    assert main(["view", str(tmp_path / "run"), "--static", "--no-browser", "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    index = out / "index.html"
    assert index.is_file() and (out / assets.BUNDLE_NAME).is_file()

    with HeadlessChromium(width=1200, height=800) as browser:
        browser.open(index.as_uri())
        browser.wait_for("window.brainexprViewer && (brainexprViewer.ready || brainexprViewer.error)",
                         timeout=180)
        assert browser.evaluate("brainexprViewer.error") is None
        assert browser.evaluate("brainexprViewer.shown") == "APOE/expr"
        canvas = browser.element_box("#gl")
        first = browser.screenshot(clip=canvas)

        # pick another gene in the menu: the canvas shows another map
        browser.evaluate("(() => { const s = document.getElementById('gene'); s.value = 'TREM2';"
                         " s.dispatchEvent(new Event('change')); })()")
        browser.wait_for("brainexprViewer.shown === 'TREM2/expr' && !brainexprViewer.busy", timeout=60)
        second = browser.screenshot(clip=canvas)
        assert _changed_fraction(first, second) > 0.02
        assert "TREM2" in browser.evaluate("document.getElementById('legend').textContent")

        # toggle the uncertainty map
        browser.evaluate("document.querySelector('input[name=layer][value=std]').click()")
        browser.wait_for("brainexprViewer.shown === 'TREM2/std'", timeout=60)
        third = browser.screenshot(clip=canvas)
        assert _changed_fraction(second, third) > 0.02
        assert "uncertainty" in browser.evaluate("document.getElementById('legend').textContent")

        # click inside the brain on the axial slice: value and region at that voxel
        tiles = browser.evaluate("brainexprViewer.nv.screenSlices.map(s => "
                                 "({axis: s.axCorSag, box: Array.from(s.leftTopWidthHeight)}))")
        left, top, width, height = next(t["box"] for t in tiles if t["axis"] == 0)
        browser.click(canvas["x"] + left + 0.35 * width, canvas["y"] + top + 0.45 * height)
        readout = browser.wait_for("brainexprViewer.readout", timeout=30)
        i, j, k = readout["vox"]
        expected_expr, expected_std = (f[i, j, k] for f in fields["TREM2"])
        assert readout["expr"] == pytest.approx(float(np.float32(expected_expr)), rel=1e-6)
        assert readout["std"] == pytest.approx(float(np.float32(expected_std)), rel=1e-6)
        np.testing.assert_allclose(voxel_to_mni([[i, j, k]], mni_grid(2)[1])[0], readout["mm"], atol=1.01)
        from brainexpr.datasets import load_atlas

        atlas = load_atlas("dk83", data_dir=data_dir)
        label = int(np.asarray(resample_to_grid(atlas.image, 2, "nearest").dataobj)[i, j, k])
        names = dict(zip(atlas.regions["id"], atlas.regions.index))
        assert readout["region"] == names.get(label, "")
        text = browser.evaluate("document.getElementById('readout').textContent")
        assert (f"region {readout['region']}" if readout["region"] else "outside the atlas regions") in text
        assert "TREM2 expression" in text

        # a gene without an uncertainty map: the toggle is disabled, the expression is shown
        browser.evaluate("(() => { const s = document.getElementById('gene'); s.value = 'HLA-DRB1';"
                         " s.dispatchEvent(new Event('change')); })()")
        browser.wait_for("brainexprViewer.shown === 'HLA-DRB1/expr'", timeout=60)
        assert browser.evaluate("document.querySelector('input[name=layer][value=std]').disabled")
        assert [line for line in browser.console if line.startswith("exception")] == []
        browser.screenshot(tmp_path / "viewer.png")
