// One sample: image, label and overlay; the classes present with their pixel
// shares; a crop preview with the augmentation parameters this server takes;
// and the API URLs and curl lines of everything shown.

import { apiUrl, getJson, getPicture, request, splitPath } from "./api.js";
import { browseUrl, debounce, el, setCrumbs, setPicture, showApiCalls, showError, swatch } from "./dom.js";
import { classCounts } from "./npy.js";

const page = document.body.dataset;
const split = page.split;
const index = Number(page.index);
const sample = splitPath(split, "samples", index);
const cropParams = new Set((page.cropParams || "").split(",").filter(Boolean));
const MAX_SEED = 2 ** 31 - 1; // any seed up to here is exact in JavaScript numbers
const form = document.getElementById("crop-form");

function sampleUrls() {
  return {
    info: apiUrl(sample),
    image: apiUrl(`${sample}/image`),
    label: apiUrl(`${sample}/label`, { format: "png" }),
    indices: apiUrl(`${sample}/label`, { format: "npy" }),
  };
}

async function main() {
  setCrumbs(["dataset", browseUrl()], [split, browseUrl(split)], [`#${index}`, null]);
  const [info, splitInfo, classes, colormap] = await Promise.all([
    getJson(sample),
    getJson(splitPath(split)),
    getJson("/v1/classes"),
    getJson("/v1/colormap"),
  ]);
  document.getElementById("title").textContent = `${split} #${index}: ${info.id} (${info.width} × ${info.height})`;
  setPager(splitInfo.size);
  setupCropForm(info);
  setupOverlay();
  const urls = sampleUrls();
  await Promise.all([showViews(urls), showClasses(urls, classes, colormap), drawCrop()]);
}

function setPager(size) {
  const prev = document.getElementById("prev-sample");
  const next = document.getElementById("next-sample");
  document.getElementById("gallery-link").href = browseUrl(split);
  prev.href = browseUrl(split, Math.max(0, index - 1));
  next.href = browseUrl(split, Math.min(size - 1, index + 1));
  prev.hidden = index === 0;
  next.hidden = index >= size - 1;
}

async function showViews(urls) {
  const [image, label] = await Promise.all([getPicture(urls.image), getPicture(urls.label)]);
  setPicture(document.getElementById("sample-image"), image.src);
  setPicture(document.getElementById("sample-label"), label.src);
  // The overlay shows the same two pictures: blob URLs stay valid while the page lives.
  setPicture(document.getElementById("overlay-image"), image.src);
  setPicture(document.getElementById("overlay-label"), label.src);
}

function setupOverlay() {
  const slider = document.getElementById("opacity");
  const output = document.getElementById("opacity-value");
  const overlay = document.getElementById("overlay");
  const apply = () => {
    output.textContent = `${slider.value}%`;
    overlay.style.setProperty("--label-opacity", String(Number(slider.value) / 100));
  };
  slider.addEventListener("input", apply);
  apply();
}

async function showClasses(urls, classes, colormap) {
  const response = await request(urls.indices);
  const counts = classCounts(await response.arrayBuffer());
  const total = counts.reduce((sum, count) => sum + count, 0);
  const rows = classes.filter((entry) => counts[entry.index] > 0).map((entry) => [entry, counts[entry.index]]);
  const ignore = { index: colormap.ignore_index, name: "ignore (border)", color: colormap.ignore_color };
  if (counts[colormap.ignore_index] > 0) rows.push([ignore, counts[colormap.ignore_index]]);
  rows.sort((a, b) => b[1] - a[1]);
  document.querySelector("#classes tbody").replaceChildren(
    ...rows.map(([entry, pixels]) =>
      el(
        "tr",
        { "data-class": entry.index },
        el("td", {}, swatch(entry.color)),
        el("td", { text: `${entry.index} ${entry.name}` }),
        el("td", { class: "number", text: pixels.toLocaleString("en") }),
        el("td", { class: "number share", text: `${((100 * pixels) / total).toFixed(1)}%` }),
      ),
    ),
  );
}

function setupCropForm(info) {
  for (const label of form.querySelectorAll("[data-param]")) {
    label.hidden = !cropParams.has(label.dataset.param);
  }
  document.getElementById("crop-height").value = Math.min(320, info.height);
  document.getElementById("crop-width").value = Math.min(480, info.width);
  document.getElementById("crop-seed").max = MAX_SEED;
  form.addEventListener("input", debounce(() => drawCrop().catch((error) => showError(error, "crop-error"))));
  form.addEventListener("submit", (event) => event.preventDefault());
  document.getElementById("new-seed").addEventListener("click", () => {
    document.getElementById("crop-seed").value = Math.floor(Math.random() * (MAX_SEED + 1));
    drawCrop().catch((error) => showError(error, "crop-error"));
  });
}

/** The crop query of the form: only parameters this server takes, defaults left out. */
function cropQuery(format) {
  const values = new FormData(form);
  const query = { index, height: values.get("height"), width: values.get("width"), seed: values.get("seed") };
  if (values.get("small") !== "drop") query.small = values.get("small");
  if (values.get("flip")) query.flip = "true";
  if (values.get("scale")) query.scale = values.get("scale").trim();
  if (cropParams.has("cat_max_ratio") && Number(values.get("cat_max_ratio")) !== 1) {
    query.cat_max_ratio = values.get("cat_max_ratio");
  }
  if (cropParams.has("photometric") && values.get("photometric")) query.photometric = "true";
  if (cropParams.has("crop_mode") && values.get("crop_mode") !== "random") query.crop_mode = values.get("crop_mode");
  query.format = format;
  return query;
}

let cropGeneration = 0;

async function drawCrop() {
  const generation = ++cropGeneration;
  const crop = splitPath(split, "crop");
  const pngUrl = apiUrl(crop, cropQuery("png"));
  const urls = sampleUrls();
  showApiCalls([
    ["sample", urls.info, null],
    ["image (stored JPEG)", urls.image, `${index}.jpg`],
    ["label (palette PNG)", urls.label, `${index}.png`],
    ["label (class indices, .npy)", urls.indices, `${index}.npy`],
    ["crop preview (PNG)", pngUrl, "crop.png"],
    ["the same crop as tensors (safetensors)", apiUrl(crop, cropQuery("safetensors")), "crop.safetensors"],
  ]);
  const { src, response } = await getPicture(pngUrl);
  if (generation !== cropGeneration) {
    URL.revokeObjectURL(src);
    return;
  }
  const img = document.getElementById("crop-image");
  setPicture(img, src);
  img.dataset.url = pngUrl;
  document.getElementById("crop-caption").textContent =
    `image and label of the crop, seed ${response.headers.get("X-Seed")}`;
  showError(null, "crop-error");
}

main().catch(showError);
