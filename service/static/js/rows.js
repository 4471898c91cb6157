// The results as rows: one per slice (a multi-frame DICOM file gives one per frame), each
// with the fields the table shows, sorts and exports.
"use strict";

import { REFUSED_WORDS, checkWords, errorWords, isRefusal, verdictWords } from "./words.js";

let nextId = 0;

function pointName(item, defaultPoint) {
  if (item.operating_point) return item.operating_point;
  return defaultPoint ? defaultPoint.name : "the model's operating point";
}

function toRow(file, item, card, defaultPoint) {
  const row = {
    id: nextId++, file, name: file.name, frame: item.frame || null,
    probability: null, result: "", check: checkWords(item), outcome: "error",
    point: "", threshold: null, detail: "",
  };
  if (item.error) {
    row.outcome = isRefusal(item.error) ? "refused" : "error";
    row.result = row.outcome === "refused" ? REFUSED_WORDS : errorWords(item.error);
    row.detail = item.error.detail || "";
    return row;
  }
  row.outcome = "classified";
  row.probability = item.tumor_probability;
  row.result = verdictWords(item, card);
  row.flagged = item.label === ((card && card.positive_class) || "tumor");
  row.threshold = item.threshold;
  row.point = pointName(item, defaultPoint);
  return row;
}

// A file's rows; the frame is named only when the file has several.
export function rowsFor(file, items, card, defaultPoint) {
  const single = items.length === 1;
  return items.map((item) => toRow(file, single ? { ...item, frame: null } : item, card,
    defaultPoint));
}

const COMPARE = {
  name: (a, b) => a.name.localeCompare(b.name) || (a.frame || 0) - (b.frame || 0),
  probability: (a, b) => (a.probability ?? -1) - (b.probability ?? -1),
  result: (a, b) => a.result.localeCompare(b.result),
  check: (a, b) => a.check.localeCompare(b.check),
};

export function sortRows(rows, key, ascending) {
  const compare = COMPARE[key];
  const sorted = [...rows].sort(compare);
  return ascending ? sorted : sorted.reverse();
}
