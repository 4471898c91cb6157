// Grad-CAM heatmaps drawn over the scan: the heatmap is coloured once with the service's own
// colour map (/ui/heatmap-colours.png, the same as /explain's PNG overlay), and the opacity
// slider only re-blends it.
"use strict";

let palette = null;

export function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("cannot display the image"));
    image.src = src;
  });
}

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

// Heat level v (0..255) becomes colour palette[v] with alpha v: the scan shows through where
// there is no evidence.
export async function colourHeatmap(heatmap) {
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

export function drawOverlay(canvas, scan, heat, opacity) {
  canvas.width = heat.width;
  canvas.height = heat.height;
  const context = canvas.getContext("2d");
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
  if (scan) context.drawImage(scan, 0, 0, canvas.width, canvas.height);
  context.globalAlpha = opacity;
  context.drawImage(heat, 0, 0);
  context.globalAlpha = 1;
}
