// The upload page: send the chosen image to POST /explain (POST /predict for a model without
// explanations) and show the answer, with the heatmap over the scan beside it, then show
// the image the model classified (POST /convert: a DICOM file converted to the 8-bit slice).
"use strict";

const form = document.getElementById("upload-form");
const fileInput = document.getElementById("file");
const keyInput = document.getElementById("api-key");
const button = document.getElementById("submit");
const preview = document.getElementById("preview");
const scanView = document.getElementById("scan-view");
const overlayView = document.getElementById("overlay-view");
const overlay = document.getElementById("overlay");
const opacity = document.getElementById("opacity");
const result = document.getElementById("result");
const errorBox = document.getElementById("error");
const classified = document.getElementById("classified");
const classifiedImage = document.getElementById("classified-image");
const dicomLine = document.getElementById("dicom");
const refusal = document.getElementById("refusal");
const gateNote = document.getElementById("gate-note");
// What browsers cannot show themselves; the page shows the server's conversion instead.
const NOT_PREVIEWABLE = /\.(dcm|dicom|tiff?)$/i;

// The heatmap coloured once per answer; the opacity slider only re-blends it.
let colouredHeat = null;
let palette = null;

function show(element, visible) {
  element.hidden = !visible;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("cannot display the image"));
    image.src = src;
  });
}

// 256 colours of the service's colour map, read from the PNG the service draws them in.
async function colourTable() {
  if (palette) return palette;
  const image = await loadImage("/ui/heatmap-colours.png");
  const canvas = document.createElement("canvas");
  canvas.width = 256;
  canvas.height = 1;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  palette = context.getImageData(0, 0, 256, 1).data;
  return palette;
}

// Heat level v (0..255) becomes colour palette[v] with alpha v: like the service's overlay,
// the scan shows through where there is no evidence.
async function colourHeatmap(heatmap) {
  const [image, colours] = await Promise.all([
    loadImage(`data:image/png;base64,${heatmap.png_base64}`), colourTable(),
  ]);
  const canvas = document.createElement("canvas");
  canvas.width = heatmap.width;
  canvas.height = heatmap.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    const level = data[i];
    data[i] = colours[4 * level];
    data[i + 1] = colours[4 * level + 1];
    data[i + 2] = colours[4 * level + 2];
    data[i + 3] = level;
  }
  context.putImageData(pixels, 0, 0);
  return canvas;
}

// The scan under the heatmap: the file itself, or the server's conversion of it.
function scanImage() {
  if (!scanView.hidden && preview.complete && preview.naturalWidth) return preview;
  if (!classified.hidden && classifiedImage.complete && classifiedImage.naturalWidth) {
    return classifiedImage;
  }
  return null;
}

function drawOverlay() {
  if (!colouredHeat) return;
  overlay.width = colouredHeat.width;
  overlay.height = colouredHeat.height;
  const context = overlay.getContext("2d");
  context.fillStyle = "#000";
  context.fillRect(0, 0, overlay.width, overlay.height);
  const scan = scanImage();
  if (scan) context.drawImage(scan, 0, 0, overlay.width, overlay.height);
  context.globalAlpha = Number(opacity.value);
  context.drawImage(colouredHeat, 0, 0);
  context.globalAlpha = 1;
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  show(result, false);
  show(errorBox, false);
  show(classified, false);
  show(refusal, false);
  show(overlayView, false);
  colouredHeat = null;
  if (file && file.type.startsWith("image/") && !NOT_PREVIEWABLE.test(file.name)) {
    preview.src = URL.createObjectURL(file);
    show(scanView, true);
  } else {
    show(scanView, false);
  }
});

opacity.addEventListener("input", drawOverlay);
classifiedImage.addEventListener("load", drawOverlay);

function request(file) {
  const body = new FormData();
  body.append("file", file, file.name);
  const headers = { Accept: "application/json" };
  if (keyInput.value) headers["X-API-Key"] = keyInput.value;
  return { body, headers };
}

async function post(route, file) {
  const { body, headers } = request(file);
  const response = await fetch(route, { method: "POST", body, headers });
  return { response, answer: await response.json() };
}

// What classify answers when the brain-MRI input gate refused the image.
const REFUSED = Symbol("refused by the input gate");

async function classify(file) {
  let { response, answer } = await post("/explain", file);
  if (response.status === 501) {
    ({ response, answer } = await post("/predict", file));  // a model without explanations
  }
  if (response.status === 422 && String(answer.type).endsWith("not_brain_mri")) {
    return REFUSED;
  }
  if (!response.ok) {
    throw new Error(`${answer.title || response.status}: ${answer.detail || ""}`);
  }
  return answer;
}

async function showClassified(file) {
  const { body, headers } = request(file);
  delete headers.Accept;
  const response = await fetch("/convert", { method: "POST", body, headers });
  if (!response.ok) return;
  classifiedImage.src = URL.createObjectURL(await response.blob());
  show(classified, true);
}

function showAnswer(answer) {
  document.getElementById("label").textContent = answer.label;
  document.getElementById("probability").textContent = answer.tumor_probability.toFixed(3);
  document.getElementById("threshold").textContent = answer.threshold;
  document.getElementById("model").textContent =
    `${answer.model.name} version ${answer.model.version}`;
  show(dicomLine, Boolean(answer.dicom));
  if (answer.dicom) {
    document.getElementById("modality").textContent = answer.dicom.modality;
    document.getElementById("sop-uid").textContent = answer.dicom.sop_instance_uid;
  }
  result.className = answer.label;
  const check = answer.input_check;
  gateNote.textContent = check && !check.passed
    ? "Note: this image does not look like a brain MRI slice; treat the label with caution."
    : "";
  show(gateNote, Boolean(check && !check.passed));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  if (!file) return;
  button.disabled = true;
  button.textContent = "Classifying…";
  show(errorBox, false);
  show(refusal, false);
  try {
    const answer = await classify(file);
    if (answer === REFUSED) {
      // The input gate refused the image: say what the model expects, not an error dump.
      show(result, false);
      show(overlayView, false);
      show(refusal, true);
      return;
    }
    showAnswer(answer);
    colouredHeat = answer.heatmap ? await colourHeatmap(answer.heatmap) : null;
    drawOverlay();
    show(overlayView, Boolean(colouredHeat));
    show(document.getElementById("opacity-row"), Boolean(colouredHeat));
    show(document.getElementById("no-explain"), !colouredHeat);
    show(result, true);
    await showClassified(file);
  } catch (error) {
    errorBox.textContent = error.message;
    show(result, false);
    show(overlayView, false);
    show(errorBox, true);
  } finally {
    button.disabled = false;
    button.textContent = "Classify";
  }
});
