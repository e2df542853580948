// CrackSAM web page: upload an image, show the crack mask over it, and the crack statistics.
// Plain browser JavaScript, no build step and nothing loaded from other sites.
"use strict";

const $ = (id) => document.getElementById(id);
const OVERLAY_RGB = [255, 32, 32];

function formatDetail(detail) {
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.parameter ? `${d.parameter}: ${d.message}` : JSON.stringify(d))).join("\n");
  }
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

function showError(title, detail) {
  const box = $("error");
  box.textContent = detail ? `${title}: ${formatDetail(detail)}` : title;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setStatus(text) {
  $("status").textContent = text;
}

async function loadModelCard() {
  try {
    const resp = await fetch("v1/model");
    const card = await resp.json();
    if (!resp.ok) {
      $("model").textContent = `Model: ${formatDetail(card.detail || card.error)}`;
      setTimeout(loadModelCard, 2000);  // still loading: ask again
      return;
    }
    // Name the network (the bundled model is a U-Net, not SAM); a native-mode model runs at the
    // photo's own size, so its training size is not shown as if it were the input size.
    const network = card.arch || card.backbone;
    const size = card.mode === "native" ? "photo's own size" : `${card.image_size} px`;
    $("model").textContent = `Model: ${network ? `${network} (${card.id})` : card.id} · ${card.runtime} ` +
      `${card.precision} · ${size} · mode ${card.mode} · threshold ${card.threshold}`;
  } catch (err) {
    $("model").textContent = `Model: cannot reach the server (${err.message})`;
  }
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("cannot decode image"));
    img.src = src;
  });
}

function fmt(value, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function addStat(list, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

function showStats(data, drawn) {
  const list = $("stats");
  list.replaceChildren();
  addStat(list, "Image", `${data.width} × ${data.height} px`);
  addStat(list, "Crack pixels", `${data.crack_pixels.toLocaleString()}`);
  addStat(list, "Crack fraction", `${(100 * data.crack_fraction).toFixed(2)} %`);
  const m = data.measurement;
  if (m) {
    const t = m.totals;
    const mm = m.mm_per_px !== null && m.mm_per_px !== undefined;
    addStat(list, "Cracks", `${t.n_cracks}` + (t.n_discarded ? ` (${t.n_discarded} shorter than ${m.min_length_px} px ignored)` : ""));
    addStat(list, "Total length", `${fmt(t.total_length_px)} px` + (mm ? ` · ${fmt(t.total_length_mm, 2)} mm` : ""));
    addStat(list, "Max width", `${fmt(t.max_width_px)} px` + (mm ? ` · ${fmt(t.max_width_mm, 2)} mm` : ""));
    addStat(list, "Mean width", `${fmt(t.mean_width_px)} px` + (mm ? ` · ${fmt(t.mean_width_mm, 2)} mm` : ""));
    addStat(list, "Note", m.resolution_note);
  }
  addStat(list, "Server time", `${fmt(data.timing_ms.total_ms, 0)} ms (inference ${fmt(data.timing_ms.inference_ms, 0)} ms)`);
  addStat(list, "Model", data.model_id);
  list.dataset.overlayPixels = String(drawn);
}

async function render(file, data) {
  const w = data.width;
  const h = data.height;
  const imageCanvas = $("image");
  const overlay = $("overlay");
  for (const c of [imageCanvas, overlay]) {
    c.width = w;
    c.height = h;
  }
  const ctx = imageCanvas.getContext("2d");
  const note = $("note");
  note.hidden = true;
  try {
    // createImageBitmap applies the EXIF orientation, as the server does.
    const bitmap = await createImageBitmap(file);
    ctx.drawImage(bitmap, 0, 0, w, h);
    bitmap.close();
  } catch (err) {
    ctx.fillStyle = "#808080";
    ctx.fillRect(0, 0, w, h);
    note.textContent = "This browser cannot display this image format; the mask is shown on gray.";
    note.hidden = false;
  }

  const maskImg = await loadImage(`data:image/png;base64,${data.mask.data}`);
  const scratch = document.createElement("canvas");
  scratch.width = w;
  scratch.height = h;
  const sctx = scratch.getContext("2d", { willReadFrequently: true });
  sctx.drawImage(maskImg, 0, 0);
  const mask = sctx.getImageData(0, 0, w, h).data;
  const octx = overlay.getContext("2d");
  const out = octx.createImageData(w, h);
  let drawn = 0;
  for (let i = 0; i < mask.length; i += 4) {
    if (mask[i] > 127) {
      out.data[i] = OVERLAY_RGB[0];
      out.data[i + 1] = OVERLAY_RGB[1];
      out.data[i + 2] = OVERLAY_RGB[2];
      out.data[i + 3] = 255;
      drawn += 1;
    }
  }
  octx.putImageData(out, 0, 0);
  overlay.dataset.crackPixels = String(drawn);
  applyOpacity();
  $("download").href = `data:image/png;base64,${data.mask.data}`;
  $("download").download = `${file.name.replace(/\.[^.]*$/, "") || "image"}_mask.png`;
  showStats(data, drawn);
  $("result").hidden = false;
}

async function segment(file) {
  clearError();
  $("result").hidden = true;  // never show the previous image's result next to this one's error
  setStatus(`Segmenting ${file.name}…`);
  const params = new URLSearchParams({ format: "json", mask: "png", measure: "true" });
  const mmpx = $("mmpx").value.trim();
  if (mmpx !== "") params.set("mm_per_px", mmpx);
  const form = new FormData();
  form.append("file", file, file.name);
  let resp;
  try {
    resp = await fetch(`v1/segment?${params}`, { method: "POST", body: form, headers: { Accept: "application/json" } });
  } catch (err) {
    setStatus("");
    showError("Cannot reach the server", err.message);
    return;
  }
  let data;
  try {
    data = await resp.json();
  } catch (err) {
    setStatus("");
    showError(`HTTP ${resp.status}`, "the server's answer is not JSON");
    return;
  }
  if (!resp.ok) {
    setStatus("");
    showError(`Error ${resp.status} (${data.error})`, data.detail);
    return;
  }
  try {
    await render(file, data);
    setStatus(`${file.name}: done.`);
  } catch (err) {
    setStatus("");
    showError("Cannot show the result", err.message);
  }
}

function applyOpacity() {
  const value = Number($("opacity").value);
  $("overlay").style.opacity = String(value / 100);
  $("opacity-value").textContent = `${value} %`;
}

function setup() {
  const input = $("file");
  input.addEventListener("change", () => {
    if (input.files && input.files[0]) segment(input.files[0]);
  });
  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (ev) => {
      ev.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    const file = ev.dataTransfer && ev.dataTransfer.files[0];
    if (file) segment(file);
  });
  $("opacity").addEventListener("input", applyOpacity);
  applyOpacity();
  loadModelCard();
}

setup();
