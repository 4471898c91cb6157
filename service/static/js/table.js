// The results table: one row element per result, built with textContent only (file names and
// server messages are data), and sorting by the column buttons (aria-sort says the order).
"use strict";

import { sortRows } from "./rows.js";

function cell(tr, text, className) {
  const td = document.createElement("td");
  if (text !== undefined) td.textContent = text;
  if (className) td.className = className;
  tr.appendChild(td);
  return td;
}

function probabilityCell(tr, row) {
  const td = cell(tr, undefined, "probability");
  if (row.probability === null) {
    td.textContent = "—";
    return;
  }
  const bar = document.createElement("meter");
  bar.min = 0;
  bar.max = 1;
  bar.value = row.probability;
  bar.setAttribute("aria-label", `P(tumor) for ${row.name}`);
  const number = document.createElement("span");
  number.className = "number";
  number.textContent = row.probability.toFixed(3);
  td.append(bar, number);
}

function fillThumbnail(td, row) {
  td.replaceChildren();
  if (row.thumbnail) {
    const image = document.createElement("img");
    image.src = row.thumbnail;
    image.alt = `Thumbnail of ${row.name}`;
    td.appendChild(image);
  } else {
    td.textContent = row.thumbnailNote || "loading preview…";
  }
}

function thumbnailCell(tr, row) {
  const td = cell(tr, undefined, "thumbnail");
  td.dataset.rowId = String(row.id);
  fillThumbnail(td, row);
}

// Only the one cell changes when a thumbnail arrives.
export function updateThumbnail(row) {
  const td = document.querySelector(`#results-body td[data-row-id="${row.id}"]`);
  if (td) fillThumbnail(td, row);
}

function heatmapCell(tr, row, onExplain) {
  const td = cell(tr);
  if (row.outcome !== "classified") return;
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Show heatmap";
  button.setAttribute("aria-label", `Show heatmap for ${row.name}`);
  button.addEventListener("click", () => onExplain(row));
  td.appendChild(button);
}

function rowElement(row, onExplain) {
  const tr = document.createElement("tr");
  tr.className = row.outcome === "classified" ? (row.flagged ? "flagged" : "not-flagged")
    : row.outcome;
  thumbnailCell(tr, row);
  const name = document.createElement("th");
  name.scope = "row";
  name.textContent = row.frame ? `${row.name} (frame ${row.frame})` : row.name;
  tr.appendChild(name);
  probabilityCell(tr, row);
  cell(tr, row.result, "result");
  cell(tr, row.check, "check");
  cell(tr, row.threshold === null ? "—" : `${row.point} (threshold ${row.threshold.toFixed(3)})`);
  heatmapCell(tr, row, onExplain);
  return tr;
}

export function renderTable(rows, onExplain) {
  const body = document.getElementById("results-body");
  body.replaceChildren(...rows.map((row) => rowElement(row, onExplain)));
}

// Column buttons: the first press sorts ascending, the next descending.
export function enableSorting(getRows, setRows) {
  for (const button of document.querySelectorAll("#results-table th button[data-sort]")) {
    button.addEventListener("click", () => {
      const header = button.closest("th");
      const ascending = header.getAttribute("aria-sort") !== "ascending";
      for (const other of document.querySelectorAll("#results-table th[aria-sort]")) {
        other.setAttribute("aria-sort", "none");
      }
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      setRows(sortRows(getRows(), button.dataset.sort, ascending));
    });
  }
}
