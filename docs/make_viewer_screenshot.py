"""Take the screenshot of the map viewer shown in the docs (``docs/viewer.png``).

Usage::

    python docs/make_viewer_screenshot.py OUTPUT_DIR [--gene SYMBOL] [--out docs/viewer.png]

``OUTPUT_DIR`` is any folder with maps named
``gene-<SYMBOL>_model-<name>_res-<1mm|2mm>_space-MNI152_<expr|std>.nii.gz`` (e.g. written by
``brainexpr predict --std`` or ``brainexpr run``). The script writes the static viewer to a
temporary folder, opens it in headless Chromium, picks the gene, clicks a point of the axial
slice (so the value and region read-out shows), and saves a screenshot of the page.
Needs Debian's ``chromium`` and the NiiVue bundle (``python -m brainexpr.viewer.assets``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from brainexpr.viewer.headless import HeadlessChromium
from brainexpr.workflows.view import view_maps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("--gene", default=None, help="gene to show (default: the first)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("viewer.png")))
    parser.add_argument("--point", default="0.62,0.40",
                        help="click position as fractions of the axial tile (x,y)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        index = view_maps(args.output_dir, static=True, out=Path(tmp) / "viewer", open_browser=False)
        with HeadlessChromium(width=1280, height=760) as browser:
            browser.open(index.as_uri())
            browser.wait_for("window.brainexprViewer && (brainexprViewer.ready || brainexprViewer.error)",
                             timeout=300)
            if browser.evaluate("brainexprViewer.error"):
                raise SystemExit(f"viewer error: {browser.evaluate('brainexprViewer.error')}")
            if args.gene:
                browser.evaluate(f"(() => {{ const s = document.getElementById('gene'); "
                                 f"s.value = {json.dumps(args.gene)}; "
                                 "s.dispatchEvent(new Event('change')); })()")
                browser.wait_for(f"brainexprViewer.shown === {json.dumps(args.gene + '/expr')}", timeout=120)
            canvas = browser.element_box("#gl")
            tiles = browser.evaluate("brainexprViewer.nv.screenSlices.map(s => "
                                     "({axis: s.axCorSag, box: Array.from(s.leftTopWidthHeight)}))")
            left, top, width, height = next(t["box"] for t in tiles if t["axis"] == 0)
            fx, fy = (float(v) for v in args.point.split(","))
            browser.click(canvas["x"] + left + fx * width, canvas["y"] + top + fy * height)
            browser.wait_for("brainexprViewer.readout", timeout=60)
            browser.screenshot(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
