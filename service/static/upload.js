// The upload page: send the chosen image to POST /predict and show the answer, then show the
// image the model classified (POST /convert: a DICOM file converted to the 8-bit slice).
"use strict";

const form = document.getElementById("upload-form");
const fileInput = document.getElementById("file");
const keyInput = document.getElementById("api-key");
const button = document.getElementById("submit");
const preview = document.getElementById("preview");
const result = document.getElementById("result");
const errorBox = document.getElementById("error");
const classified = document.getElementById("classified");
const classifiedImage = document.getElementById("classified-image");
const dicomLine = document.getElementById("dicom");
const refusal = document.getElementById("refusal");
const gateNote = document.getElementById("gate-note");
// What browsers cannot show themselves; the page shows the server's conversion instead.
const NOT_PREVIEWABLE = /\.(dcm|dicom|tiff?)$/i;

function show(element, visible) {
  element.hidden = !visible;
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  show(result, false);
  show(errorBox, false);
  show(classified, false);
  show(refusal, false);
  if (file && file.type.startsWith("image/") && !NOT_PREVIEWABLE.test(file.name)) {
    preview.src = URL.createObjectURL(file);
    show(preview, true);
  } else {
    show(preview, false);
  }
});

async function showClassified(body, headers) {
  const response = await fetch("/convert", { method: "POST", body, headers });
  if (!response.ok) return;
  classifiedImage.src = URL.createObjectURL(await response.blob());
  show(classified, true);
}

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
  show(refusal, false);
  try {
    const response = await fetch("/predict", { method: "POST", body, headers });
    const answer = await response.json();
    if (response.status === 422 && String(answer.type).endsWith("not_brain_mri")) {
      // The input gate refused the image: say what the model expects, not an error dump.
      show(result, false);
      show(refusal, true);
      return;
    }
    if (!response.ok) {
      throw new Error(`${answer.title || response.status}: ${answer.detail || ""}`);
    }
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
    show(result, true);
    await showClassified(body, headers);
  } catch (error) {
    errorBox.textContent = error.message;
    show(result, false);
    show(errorBox, true);
  } finally {
    button.disabled = false;
    button.textContent = "Classify";
  }
});
