// brainexpr map viewer: pick a gene, see its map over the MNI152 T1 with NiiVue, toggle the
// uncertainty map, click to read the value and the atlas region.
// The manifest (gene list, data keys, region names) is inlined by brainexpr.viewer.site.
// State is exposed as window.brainexprViewer for tests and for debugging.
(function () {
  "use strict";
  const manifest = JSON.parse(document.getElementById("brainexpr-manifest").textContent);
  const state = {
    ready: false, busy: false, error: null, gene: null, model: null, layer: "expr",
    shown: null, range: null, readout: null, nv: null, opacity: 0.85,
  };
  window.brainexprViewer = state;
  const $ = (id) => document.getElementById(id);
  const LAYER_NAMES = { expr: "expression", std: "uncertainty (SD)" };
  // Only the template and the map on show are NiiVue layers (each layer makes redraws slower
  // under software WebGL); the other map of the gene and the atlas are parsed volumes that
  // are read directly at the clicked voxel (all volumes share one MNI152 grid).
  let overlays = { expr: null, std: null };
  let shownVolume = null;
  let atlas = null;
  let showToken = 0;

  // ---------------------------------------------------------------- data loading
  // Each volume is a script "data/<key>.js" that stores the base64 of a .nii.gz; scripts
  // load from file:// pages too, where fetch() is refused.
  function loadBase64(key) {
    return new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      tag.src = "data/" + encodeURIComponent(key) + ".js";
      tag.onload = () => {
        const store = window.brainexprData || {};
        const text = store[key];
        delete store[key];  // the decoded volume is all that is kept
        tag.remove();
        text ? resolve(text) : reject(new Error("no data in " + tag.src));
      };
      tag.onerror = () => { tag.remove(); reject(new Error("cannot load " + tag.src)); };
      document.head.appendChild(tag);
    });
  }

  function decode(base64) {
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  async function loadVolume(key, options) {
    const buffer = decode(await loadBase64(key));
    const volume = await niivue.NVImage.loadFromUrl(
      Object.assign({ url: key + ".nii.gz", name: key + ".nii.gz", buffer: buffer }, options));
    volume.colorbarVisible = false;
    return volume;
  }

  // Colour range: the smallest finite value (so no brain voxel falls below it and turns
  // transparent) to the 99.5th percentile (one extreme voxel does not wash out the colours).
  function displayRange(img) {
    let lo = Infinity, hi = -Infinity, n = 0;
    for (let i = 0; i < img.length; i++) {
      const v = img[i];
      if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; n++; }
    }
    if (n === 0) return [0, 1];
    const nBins = 1000, width = (hi - lo) || 1, bins = new Uint32Array(nBins);
    for (let i = 0; i < img.length; i++) {
      const v = img[i];
      if (Number.isFinite(v)) bins[Math.min(nBins - 1, Math.floor((v - lo) / width * nBins))]++;
    }
    let top = hi;
    for (let i = 0, count = 0; i < nBins; i++) {
      count += bins[i];
      if (count >= 0.995 * n) { top = lo + (i + 1) / nBins * width; break; }
    }
    const pad = Math.max((top - lo) * 1e-4, 1e-9);
    return [lo - pad, Math.max(top, lo + 2 * pad)];
  }

  // ---------------------------------------------------------------- display
  function entryFor(gene, model) {
    return manifest.maps.find((m) => m.gene === gene && m.model === model)
      || manifest.maps.find((m) => m.gene === gene);
  }

  const format = (v) => (Number.isFinite(v) ? Number(v).toPrecision(3) : "n/a");

  function applyLayer() {
    const nv = state.nv;
    const layer = state.layer === "std" && overlays.std ? "std" : "expr";
    const volume = overlays[layer];
    if (volume !== shownVolume) {
      if (shownVolume) nv.removeVolume(shownVolume);
      volume.opacity = state.opacity;
      volume.colorbarVisible = true;
      nv.addVolume(volume);
      shownVolume = volume;
    }
    const range = [volume.cal_min, volume.cal_max];
    state.range = range;
    $("legend").innerHTML = "";
    const name = document.createElement("strong");
    name.textContent = state.gene;
    $("legend").append(name, ` ${LAYER_NAMES[layer]} · model ${state.model} · ` +
      `${manifest.resolution_mm} mm · colour range ${format(range[0])} to ${format(range[1])}`);
    // trust: the gene's held-out r under the fitted model; the SD's meaning, in one sentence
    const entry = entryFor(state.gene, state.model);
    const notes = [];
    if (entry.trust !== null && entry.trust !== undefined) {
      notes.push(`Trust: held-out r ${format(entry.trust)} (r of each sample with its prediction ` +
        "from the samples outside its 20 mm block and an 8 mm margin).");
    }
    if (layer === "std" && entry.std_meaning) notes.push(`SD: ${entry.std_meaning}.`);
    $("note").textContent = notes.join(" ");
    document.querySelectorAll("input[name=layer]").forEach((input) => {
      input.checked = input.value === layer;
      input.disabled = input.value === "std" && !overlays.std;
    });
    return layer;
  }

  function nextFrame() {
    return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  }

  async function show() {
    const token = ++showToken;
    state.busy = true;
    const entry = entryFor(state.gene, state.model);
    state.model = entry.model;
    $("model").value = entry.model;
    const options = (kind) => ({ colormap: manifest.colormaps[kind], opacity: 0 });
    const [expr, std] = await Promise.all([
      loadVolume(entry.expr, options("expr")),
      entry.std ? loadVolume(entry.std, options("std")) : Promise.resolve(null),
    ]);
    if (token !== showToken) return;  // a newer choice superseded this one
    overlays = { expr: expr, std: std };
    for (const volume of [expr, std]) {
      if (volume) [volume.cal_min, volume.cal_max] = displayRange(volume.img);
    }
    const layer = applyLayer();
    updateHash();
    await nextFrame();
    if (token !== showToken) return;
    state.shown = `${state.gene}/${layer}`;
    state.busy = false;
    readLocation(state.lastLocation);
  }

  // Voxel (i, j, k) of the shared grid at MNI mm, from the inverse affine in the manifest
  // (NiiVue's own voxel coordinates are reoriented to RAS and may be flipped).
  function voxelAt(mm) {
    const inv = manifest.inverse_affine;
    return [0, 1, 2].map((r) => Math.round(inv[r][0] * mm[0] + inv[r][1] * mm[1] + inv[r][2] * mm[2] + inv[r][3]));
  }

  // Value of a parsed volume at a voxel of the shared grid; NaN outside it.
  function valueAt(volume, vox) {
    if (!volume) return NaN;
    const dims = volume.hdr.dims;
    const [i, j, k] = vox;
    if (i < 0 || j < 0 || k < 0 || i >= dims[1] || j >= dims[2] || k >= dims[3]) return NaN;
    const v = volume.img[i + dims[1] * (j + dims[2] * k)];
    const slope = volume.hdr.scl_slope || 1;
    return v * slope + (volume.hdr.scl_inter || 0);
  }

  function readLocation(data) {
    if (!data) return;
    state.lastLocation = data;
    const vox = voxelAt(Array.from(data.mm));
    const labelId = Math.round(valueAt(atlas, vox));
    const region = manifest.labels[String(labelId)] || "";
    const expr = valueAt(overlays.expr, vox);
    const std = valueAt(overlays.std, vox);
    const mm = Array.from(data.mm).slice(0, 3).map((v) => Math.round(v));
    state.readout = { mm: mm, vox: vox, region: region, expr: expr, std: std, gene: state.gene };
    const parts = [`(${mm.join(", ")}) mm`, region ? `region ${region}` : "outside the atlas regions"];
    if (Number.isFinite(expr)) {
      parts.push(`${state.gene} expression ${format(expr)}` +
        (Number.isFinite(std) ? ` ± ${format(std)} (SD)` : ""));
    } else {
      parts.push("outside the brain mask");
    }
    $("readout").textContent = parts.join(" · ");
  }

  // ---------------------------------------------------------------- controls
  function fillSelect(select, values) {
    select.innerHTML = "";
    for (const value of values) {
      const option = document.createElement("option");
      option.value = option.textContent = value;
      select.append(option);
    }
  }

  function modelsOf(gene) {
    return manifest.maps.filter((m) => m.gene === gene).map((m) => m.model);
  }

  function updateHash() {
    const params = new URLSearchParams({ gene: state.gene, model: state.model, layer: state.layer });
    history.replaceState(null, "", "#" + params.toString());
  }

  function fail(error) {
    state.error = String(error && error.message ? error.message : error);
    state.busy = false;
    $("legend").textContent = "Error: " + state.error;
    $("legend").className = "error";
  }

  async function init() {
    const genes = [...new Set(manifest.maps.map((m) => m.gene))];
    const models = [...new Set(manifest.maps.map((m) => m.model))];
    const wanted = new URLSearchParams(location.hash.slice(1));
    state.gene = genes.includes(wanted.get("gene")) ? wanted.get("gene") : genes[0];
    state.model = wanted.get("model") || modelsOf(state.gene)[0];
    state.layer = wanted.get("layer") === "std" ? "std" : "expr";
    fillSelect($("gene"), genes);
    $("gene").value = state.gene;
    fillSelect($("model"), modelsOf(state.gene));
    $("model-label").hidden = models.length < 2;

    $("gene").addEventListener("change", () => {
      state.gene = $("gene").value;
      fillSelect($("model"), modelsOf(state.gene));
      show().catch(fail);
    });
    // completion over every gene (a whole-transcriptome atlas has ~15,000): the datalist
    // suggests names as one types; a complete name shows that gene's map
    fillSelect($("gene-names"), genes);
    const known = new Set(genes);
    $("gene-search").addEventListener("input", () => {
      const name = $("gene-search").value.trim();
      if (!known.has(name) || name === state.gene) return;
      $("gene").value = state.gene = name;
      fillSelect($("model"), modelsOf(state.gene));
      show().catch(fail);
    });
    $("model").addEventListener("change", () => { state.model = $("model").value; show().catch(fail); });
    document.querySelectorAll("input[name=layer]").forEach((input) => input.addEventListener("change", () => {
      state.layer = input.value;
      state.shown = `${state.gene}/${applyLayer()}`;
      updateHash();
    }));

    $("opacity").value = state.opacity;
    $("opacity").addEventListener("input", () => {
      state.opacity = Number($("opacity").value);
      if (shownVolume) { shownVolume.opacity = state.opacity; state.nv.updateGLVolume(); }
    });

    const nv = new niivue.Niivue({
      backColor: [0, 0, 0, 1], isColorbar: true, show3Dcrosshair: false,
      crosshairColor: [1, 0.35, 0.35, 1], dragAndDropEnabled: false, isResizeCanvas: true,
    });
    state.nv = nv;
    await nv.attachTo("gl");
    nv.setSliceType(nv.sliceTypeMultiplanar);
    nv.onLocationChange = readLocation;
    const template = await loadVolume("template", { colormap: "gray", cal_min: 0, cal_max: 255, trustCalMinMax: true });
    nv.addVolume(template);
    atlas = await loadVolume("atlas", { colormap: "gray", opacity: 0 });
    await show();
    state.ready = true;
  }

  init().catch(fail);
})();
