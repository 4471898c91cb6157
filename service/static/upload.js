// The upload page: send the chosen image to POST /predict and show the answer.
"use strict";

const form = document.getElementById("upload-form");
const fileInput = document.getElementById("file");
const keyInput = document.getElementById("api-key");
const button = document.getElementById("submit");
const preview = document.getElementById("preview");
const result = document.getElementById("result");
const errorBox = document.getElementById("error");

function show(element, visible) {
  element.hidden = !visible;
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  show(result, false);
  show(errorBox, false);
  if (file && file.type !== "image/tiff") {
    preview.src = URL.createObjectURL(file);
    show(preview, true);
  } else {
    show(preview, false);
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  if (!file) return;
  const body = new FormData();
  body.append("file", file, file.name);
  const headers = {};
  if (keyInput.value) headers["X-API-Key"] = keyInput.value;
  button.disabled = true;
  button.textContent = "Classifying…";
  show(errorBox, false);
  try {
    const response = await fetch("/predict", { method: "POST", body, headers });
    const answer = await response.json();
    if (!response.ok) {
      throw new Error(`${answer.title || response.status}: ${answer.detail || ""}`);
    }
    document.getElementById("label").textContent = answer.label;
    document.getElementById("probability").textContent = answer.tumor_probability.toFixed(3);
    document.getElementById("threshold").textContent = answer.threshold;
    document.getElementById("model").textContent =
      `${answer.model.name} version ${answer.model.version}`;
    result.className = answer.label;
    show(result, true);
  } catch (error) {
    errorBox.textContent = error.message;
    show(result, false);
    show(errorBox, true);
  } finally {
    button.disabled = false;
    button.textContent = "Classify";
  }
});
