// A small picture of each scan: the file itself when the browser can show it, else the
// image the service classifies (POST /convert: a DICOM file as a viewer shows it).
"use strict";

import { headers } from "./api.js";

const BROWSER_SHOWS = /\.(png|jpe?g|gif|webp|bmp)$/i;
const cache = new Map();  // one preview per file (and frame)

async function converted(file, frame) {
  const body = new FormData();
  body.append("file", file, file.name);
  const query = frame && frame > 1 ? `?frame=${frame}` : "";
  const response = await fetch(`/convert${query}`, { method: "POST", body, headers: headers() });
  if (!response.ok) return null;
  return URL.createObjectURL(await response.blob());
}

// A URL to show for the row's scan, or null when there is none to show.
export async function previewUrl(row) {
  const key = `${row.id}`;
  if (cache.has(key)) return cache.get(key);
  let url = null;
  if (row.outcome !== "error" && BROWSER_SHOWS.test(row.name) && row.file.type.startsWith("image/")) {
    url = URL.createObjectURL(row.file);
  } else if (row.outcome !== "error") {
    url = await converted(row.file, row.frame);
  }
  cache.set(key, url);
  return url;
}

// Fill in the thumbnails one after another (a DICOM file costs a /convert request).
export async function loadThumbnails(rows, onLoaded) {
  for (const row of rows) {
    if (row.thumbnail || row.thumbnailNote) continue;
    const url = await previewUrl(row);
    if (url) row.thumbnail = url;
    else row.thumbnailNote = row.outcome === "error" ? "no preview (unreadable)" : "no preview";
    onLoaded(row);
  }
}
