// Talking to the service: one file to a single-image route, many through /predict/batch in
// chunks the service accepts (its MRI_MAX_BATCH_FILES, learnt again from a 422 too_many_files;
// a chunk refused as too large (413) is split in two).
"use strict";

const keyInput = () => document.getElementById("api-key");

export function headers(accept) {
  const result = accept ? { Accept: accept } : {};
  if (keyInput().value) result["X-API-Key"] = keyInput().value;
  return result;
}

export function problemReason(problem) {
  const type = String((problem && problem.type) || "");
  return type.includes(":problem:") ? type.split(":problem:")[1] : type;
}

export async function postFile(route, file, accept = "application/json") {
  const body = new FormData();
  body.append("file", file, file.name);
  return fetch(route, { method: "POST", body, headers: headers(accept) });
}

async function readProblem(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText, status: response.status };
  }
}

// A route with the chosen operating point as `?operating_point=` (none: the server's default).
export function withPoint(route, pointName) {
  return pointName ? `${route}?${new URLSearchParams({ operating_point: pointName })}` : route;
}

// One chunk: {items} on success, {split} when it must be sent smaller, else {problem}.
async function sendChunk(files, pointName) {
  const body = new FormData();
  for (const file of files) body.append("files", file, file.name);
  let response;
  try {
    response = await fetch(withPoint("/predict/batch", pointName),
      { method: "POST", body, headers: headers("application/json") });
  } catch {
    // A server may close the connection on a body over its limit before answering 413.
    if (files.length > 1) return { split: Math.ceil(files.length / 2) };
    return { problem: { type: "network_error", title: "no answer from the service" } };
  }
  if (response.ok) return { items: (await response.json()).results };
  const problem = await readProblem(response);
  if (problem.max_files && files.length > problem.max_files) {
    return { split: problem.max_files };
  }
  if (response.status === 413 && files.length > 1) return { split: Math.ceil(files.length / 2) };
  return { problem };
}

// The batch answer's items grouped by file: a multi-frame DICOM file has one item per frame.
function itemsByFile(files, items) {
  const grouped = files.map(() => []);
  let index = -1;
  for (const item of items) {
    if (!item.frame || item.frame === 1 || index < 0) index += 1;
    grouped[Math.min(index, files.length - 1)].push(item);
  }
  return grouped;
}

function chunked(files, size) {
  const chunks = [];
  for (let start = 0; start < files.length; start += size) {
    chunks.push(files.slice(start, start + size));
  }
  return chunks;
}

// Classify every file at the named operating point (null: the server's default);
// onChunk(file/items pairs) is called as each chunk is answered.
export async function classifyAll(files, limit, onChunk, pointName = null) {
  let size = Math.max(1, limit);
  const queue = chunked(files, size);
  while (queue.length) {
    const chunk = queue.shift();
    const outcome = await sendChunk(chunk, pointName);
    if (outcome.split) {
      size = Math.min(size, outcome.split);
      queue.unshift(...chunked(chunk, outcome.split));
      continue;
    }
    const grouped = outcome.items
      ? itemsByFile(chunk, outcome.items)
      : chunk.map(() => [{ error: outcome.problem }]);
    onChunk(chunk.map((file, index) => ({ file, items: grouped[index] })));
  }
}

export async function fetchCard() {
  const response = await fetch("/model", { headers: { Accept: "application/json" } });
  return response.ok ? response.json() : null;
}
