// The upload page: choose or drop any number of scans, classify them through /predict/batch
// in chunks with progress, and show the results table (sortable, exportable as CSV), the
// heatmap one click away, and what the operating point means in plain words (with a choice
// of operating point when the model card names several).
"use strict";

import { classifyAll, fetchCard } from "./api.js";
import { downloadCsv } from "./csv.js";
import { rowsFor } from "./rows.js";
import { enableSorting, renderTable, updateThumbnail } from "./table.js";
import { loadThumbnails } from "./thumbnails.js";
import { enableViewer, showHeatmap } from "./viewer.js";
import { operatingPoints, pointWords } from "./words.js";

const element = (id) => document.getElementById(id);
const state = { files: [], rows: [], card: null, point: null };

function batchLimit() {
  const content = document.querySelector('meta[name="max-batch-files"]').content;
  return Number.parseInt(content, 10) || 32;
}

// The service's MRI_OPERATING_POINT ("" when unset), served with the page.
function configuredPoint() {
  return document.querySelector('meta[name="operating-point"]').content;
}

async function loadCard() {
  if (state.card) return;
  state.card = await fetchCard().catch(() => null);
  const text = element("operating-point-text");
  if (!state.card) {
    text.textContent = "The model is not ready yet; the operating point appears once it is.";
    return;
  }
  const points = operatingPoints(state.card, configuredPoint());
  state.point = points[0];
  offerPoints(points);
  text.textContent = points.length > 1
    ? points.map((point) => `${point.name}${point.isDefault ? " (default)" : ""}: `
      + pointWords(point, state.card)).join(" ")
    : `At ${state.point.name}: ${pointWords(state.point, state.card)}`;
}

// The operating point selector, shown only for a card with named points (the default first).
function offerPoints(points) {
  if (!points[0].named) return;
  const select = element("point-select");
  select.replaceChildren(...points.map((point) => {
    const option = document.createElement("option");
    option.value = point.name;
    option.textContent = `${point.name}${point.isDefault ? " (default)" : ""}, threshold `
      + point.threshold.toFixed(3);
    return option;
  }));
  select.addEventListener("change", () => {
    state.point = points.find((point) => point.name === select.value) || points[0];
  });
  element("point-row").hidden = false;
}

function choose(files) {
  state.files = [...files];
  const count = state.files.length;
  element("chosen").textContent = count === 0 ? "No files chosen."
    : `${count} file${count === 1 ? "" : "s"} chosen.`;
}

function showRows(rows) {
  state.rows = rows;
  renderTable(rows, showHeatmap);
}

function progress(done, total) {
  element("progress").max = total;
  element("progress").value = done;
  element("progress-text").textContent = `${done} of ${total} files classified`;
}

async function classify() {
  const files = state.files;
  if (!files.length) return;
  await loadCard();
  state.rows = [];
  showRows([]);
  element("results").hidden = false;
  element("progress-row").hidden = false;
  let done = 0;
  progress(0, files.length);
  await classifyAll(files, batchLimit(), (answered) => {
    for (const { file, items } of answered) {
      state.rows.push(...rowsFor(file, items, state.card, state.point));
    }
    done += answered.length;
    progress(done, files.length);
    showRows(state.rows);
  }, state.point && state.point.named ? state.point.name : null);
  await loadThumbnails(state.rows, updateThumbnail);
}

function enableDropZone() {
  const zone = element("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    choose(event.dataTransfer.files);
  });
}

function enableForm() {
  element("files").addEventListener("change", () => choose(element("files").files));
  element("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = element("submit");
    button.disabled = true;
    element("error").hidden = true;
    try {
      await classify();
    } catch (error) {
      element("error").textContent = `Could not classify: ${error.message}`;
      element("error").hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  element("export-csv").addEventListener("click", () => downloadCsv(state.rows));
}

enableDropZone();
enableForm();
enableViewer();
enableSorting(() => state.rows, showRows);
loadCard();
