// Plain words for what the service answers: the verdict, the input check, a file's error,
// and what the operating point means, computed from the model card (never hard-coded).
"use strict";

import { problemReason } from "./api.js";

const ERROR_WORDS = {
  unsupported_format: "Not an image this service reads (PNG, JPEG, BMP, TIFF, GIF, WebP or DICOM).",
  empty_file: "The file is empty.",
  undecodable: "The file is damaged: it could not be decoded as an image.",
  truncated: "The file is cut short: it could not be read to the end.",
  file_too_large: "The file is too large for this service.",
  body_too_large: "The file is too large to send to this service.",
  network_error: "No answer from the service: is it running?",
  too_many_pixels: "The image has too many pixels for this service.",
  unsupported_transfer_syntax: "A DICOM file compressed in a way this service cannot read.",
  unsupported_modality: "A DICOM file that is not an MR image.",
  no_pixel_data: "A DICOM file without an image in it.",
  unsupported_pixels: "A DICOM image whose pixel layout this service cannot read.",
  multi_frame: "A multi-frame DICOM file: a heatmap is made for one frame at a time only.",
  unauthorized: "The API key is missing or wrong.",
  queue_full: "The service is busy: try again in a moment.",
  not_ready: "The model is still loading: try again in a moment.",
};
export const REFUSED_WORDS = "not a brain MRI slice: not classified";

export function isRefusal(problem) {
  return problemReason(problem) === "not_brain_mri";
}

export function errorWords(problem) {
  return ERROR_WORDS[problemReason(problem)]
    || `The service refused the file: ${problem.title || problem.status || "unknown error"}.`;
}

export function verdictWords(item, card) {
  const positive = (card && card.positive_class) || "tumor";
  return item.label === positive ? `${positive} flagged` : `no ${positive} flagged`;
}

export function checkWords(item) {
  if (item.error) return isRefusal(item.error) ? "refused: not a brain MRI slice" : "";
  if (!item.input_check) return "not checked";
  return item.input_check.passed ? "passed: looks like a brain MRI slice"
    : "failed: does not look like a brain MRI slice (answered anyway)";
}

function measure(raw) {
  if (typeof raw === "number") return { value: raw, ci95: null };
  if (raw && typeof raw.value === "number") {
    return { value: raw.value, ci95: Array.isArray(raw.ci95) ? raw.ci95 : null };
  }
  return null;
}

// The card's operating points, the default first (see service/operating_points.py): its
// named ones ({default, name: {threshold, test: {sensitivity, specificity}}}, each `named`,
// requested by name), else its single threshold with the test metrics. The default is the
// service's (`configured`, its MRI_OPERATING_POINT) when the card has it, else the card's.
export function operatingPoints(card, configured = "") {
  const named = card.operating_points;
  if (named && typeof named === "object") {
    const defaultName = configured && named[configured] ? configured : named.default;
    const points = Object.entries(named)
      .filter(([, point]) => point && typeof point.threshold === "number")
      .map(([name, point]) => ({
        name, threshold: point.threshold, named: true,
        sensitivity: measure(point.test && point.test.sensitivity),
        specificity: measure(point.test && point.test.specificity),
        isDefault: name === defaultName,
      }));
    if (points.length) return points.sort((a, b) => Number(b.isDefault) - Number(a.isDefault));
  }
  const metrics = card.metrics || {};
  return [{
    name: "the model's operating point", threshold: card.threshold, isDefault: true,
    named: false,
    sensitivity: measure(metrics.sensitivity ?? metrics.recall),
    specificity: measure(metrics.specificity),
  }];
}

function perHundred(rate) {
  let words = `about ${Math.round(100 * rate.value)} of 100`;
  if (rate.ci95) {
    const [low, high] = rate.ci95.map((bound) => Math.round(100 * bound));
    words += ` (95% interval ${low} to ${high})`;
  }
  return words;
}

export function pointWords(point, card) {
  const positive = card.positive_class || "tumor";
  const negative = (card.classes || []).find((name) => name !== positive) || "other";
  const threshold = `P(${positive}) at or above ${point.threshold.toFixed(3)} is flagged`;
  if (!point.sensitivity || !point.specificity) {
    return `${threshold}; this model's card holds no measured sensitivity or specificity.`;
  }
  const spec = point.specificity;
  const flagged = {
    value: 1 - spec.value, ci95: spec.ci95 ? [1 - spec.ci95[1], 1 - spec.ci95[0]] : null,
  };
  return `${threshold}. On the test split it flags ${perHundred(point.sensitivity)} `
    + `${positive} slices; ${perHundred(flagged)} ${negative} slices are flagged too.`;
}
