// The results table as a CSV file, made in the browser (nothing is sent anywhere). Cells are
// quoted as RFC 4180 says, and a cell a spreadsheet would read as a formula (= + - @, tab,
// carriage return) gets a leading apostrophe: file names are chosen by whoever made the files.
"use strict";

const HEADER = ["file", "frame", "p_tumor", "result", "input_check", "operating_point",
  "threshold", "error_detail"];

export function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function fields(row) {
  return [
    row.name, row.frame ?? "",
    row.probability === null ? "" : row.probability.toFixed(3),
    row.result, row.check, row.point,
    row.threshold === null ? "" : row.threshold.toFixed(3), row.detail,
  ];
}

export function toCsv(rows) {
  return [HEADER, ...rows.map(fields)]
    .map((line) => line.map(csvCell).join(","))
    .join("\r\n") + "\r\n";
}

export function downloadCsv(rows) {
  const blob = new Blob([toCsv(rows)], { type: "text/csv;charset=utf-8" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "mri-classifications.csv";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
