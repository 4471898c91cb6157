// The heatmap viewer: one click on a row's button asks POST /explain for that file and shows
// the Grad-CAM heatmap over the scan, beside the scan itself, with an opacity slider.
"use strict";

import { postFile } from "./api.js";
import { colourHeatmap, drawOverlay, loadImage } from "./heatmap.js";
import { previewUrl } from "./thumbnails.js";
import { errorWords } from "./words.js";

const element = (id) => document.getElementById(id);
let shown = { heat: null, scan: null };

function redraw() {
  if (!shown.heat) return;
  drawOverlay(element("overlay"), shown.scan, shown.heat, Number(element("opacity").value));
}

function setStatus(text, withOverlay) {
  element("viewer-status").textContent = text;
  element("overlay-view").hidden = !withOverlay;
  element("opacity-row").hidden = !withOverlay;
}

async function explanation(row) {
  const response = await postFile("/explain", row.file);
  const answer = await response.json().catch(() => ({}));
  if (response.status === 501) return { note: "This model version has no explanations." };
  if (!response.ok) return { note: errorWords(answer) };
  return { answer };
}

export async function showHeatmap(row) {
  shown = { heat: null, scan: null };
  element("viewer").hidden = false;
  element("viewer-name").textContent = row.frame ? `${row.name} (frame ${row.frame})` : row.name;
  setStatus("Computing the heatmap…", false);
  element("viewer-title").focus();
  const url = await previewUrl(row);
  element("viewer-scan").src = url || "";
  element("viewer-scan").hidden = !url;
  const { answer, note } = await explanation(row);
  if (!answer) {
    setStatus(note, false);
    return;
  }
  shown = { heat: await colourHeatmap(answer.heatmap), scan: url ? await loadImage(url) : null };
  redraw();
  setStatus(`P(tumor) ${answer.tumor_probability.toFixed(3)}. Bright areas weighed most `
    + "towards tumor; they are not a segmentation.", true);
}

export function enableViewer() {
  element("opacity").addEventListener("input", redraw);
}
