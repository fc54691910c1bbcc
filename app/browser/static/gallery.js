// A split's gallery: a page of thumbnails (image with the label on top at an
// adjustable opacity), paging, and a filter by a class present in the image.
// The state (page, class, opacity) lives in the URL, so a view can be shared.
// Pages come from the server's list of samples by class when it has one
// (data-presence), which also names each sample; else from the split's size.

import { apiUrl, getJson, getPicture, splitPath } from "./api.js";
import { browseUrl, el, setCrumbs, setPicture, showApiCalls, showError } from "./dom.js";

const page = document.body.dataset;
const split = page.split;
const PER_PAGE = 24;
const THUMBNAIL = 160;

const controls = {
  filter: document.getElementById("class-filter"),
  opacity: document.getElementById("opacity"),
  opacityValue: document.getElementById("opacity-value"),
  number: document.getElementById("page-number"),
  count: document.getElementById("page-count"),
  prev: document.getElementById("prev-page"),
  next: document.getElementById("next-page"),
  grid: document.getElementById("gallery"),
  summary: document.getElementById("gallery-summary"),
};

let total = 0; // samples in the current view (all, or those with the chosen class)
let drawn = 0; // generation of the page on screen: a newer draw wins

function readState() {
  const query = new URLSearchParams(window.location.search);
  return {
    page: Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1),
    cls: query.get("class") || "",
    opacity: Math.min(100, Math.max(0, Number.parseInt(query.get("opacity") ?? "50", 10) || 0)),
  };
}

function writeState(state, push) {
  const query = new URLSearchParams();
  if (state.page > 1) query.set("page", state.page);
  if (state.cls !== "") query.set("class", state.cls);
  if (state.opacity !== 50) query.set("opacity", state.opacity);
  const url = `${window.location.pathname}${query.size ? `?${query}` : ""}`;
  if (push) window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
}

function currentState() {
  return {
    page: Number.parseInt(controls.number.value, 10) || 1,
    cls: controls.filter.value,
    opacity: Number(controls.opacity.value),
  };
}

function setOpacity(percent) {
  controls.opacity.value = percent;
  controls.opacityValue.textContent = `${percent}%`;
  controls.grid.style.setProperty("--label-opacity", String(percent / 100));
}

async function main() {
  setCrumbs(["dataset", browseUrl()], [split, null]);
  document.getElementById("title").textContent = `Gallery of ${split}`;
  const [info, classes] = await Promise.all([getJson(splitPath(split)), getJson("/v1/classes")]);
  const images = page.stats === "yes" ? await imagesPerClass() : null;
  for (const entry of classes) {
    const count = images === null ? "" : ` (${images[entry.index]} images)`;
    controls.filter.append(el("option", { value: entry.index, text: `${entry.index} ${entry.name}${count}` }));
  }
  if (page.presence !== "yes") {
    controls.filter.disabled = true;
    controls.filter.title = "this server does not list samples by class";
  }
  const show = async (push) => {
    const state = currentState();
    writeState(state, push);
    await drawPage(state, classes, info.size);
  };
  const restore = () => {
    const state = readState();
    controls.filter.value = state.cls;
    controls.number.value = state.page;
    setOpacity(state.opacity);
  };
  restore();
  controls.opacity.addEventListener("input", () => {
    setOpacity(Number(controls.opacity.value));
    writeState(currentState(), false);
  });
  controls.filter.addEventListener("change", () => {
    controls.number.value = 1;
    show(true).catch(showError);
  });
  controls.number.addEventListener("change", () => show(true).catch(showError));
  controls.prev.addEventListener("click", () => turn(-1, show));
  controls.next.addEventListener("click", () => turn(1, show));
  window.addEventListener("popstate", () => {
    restore();
    show(false).catch(showError);
  });
  await show(false);
}

/** Images of the split that contain each class, from its class statistics. */
async function imagesPerClass() {
  const stats = await getJson(splitPath(split, "stats"));
  return stats.classes.map((entry) => entry.images);
}

function pageCount() {
  return Math.max(1, Math.ceil(total / PER_PAGE));
}

/** The samples of page ``number`` (1-based): {total, items: [{index, id}]}. */
async function fetchPage(number, cls, size) {
  const offset = (number - 1) * PER_PAGE;
  if (page.presence !== "yes") {
    const count = Math.max(0, Math.min(PER_PAGE, size - offset));
    return { total: size, items: Array.from({ length: count }, (_, i) => ({ index: offset + i, id: null })) };
  }
  const listing = await getJson(listPath(), listQuery(cls, offset));
  return { total: listing.total, items: listing.samples };
}

function listPath() {
  return splitPath(split, "samples");
}

function listQuery(cls, offset) {
  return { classes: cls, offset, limit: PER_PAGE };
}

function turn(step, show) {
  const target = (Number.parseInt(controls.number.value, 10) || 1) + step;
  if (target < 1 || target > pageCount()) return;
  controls.number.value = target;
  show(true).catch(showError);
}

async function drawPage(state, classes, size) {
  const generation = ++drawn;
  let listing = await fetchPage(state.page, state.cls, size);
  total = listing.total;
  const pages = pageCount();
  const number = Math.min(Math.max(1, state.page), pages);
  if (number !== state.page) listing = await fetchPage(number, state.cls, size);
  if (generation !== drawn) return;
  controls.number.value = number;
  controls.number.max = pages;
  controls.count.textContent = `of ${pages}`;
  controls.prev.disabled = number <= 1;
  controls.next.disabled = number >= pages;
  const shown = listing.items;
  const name = state.cls === "" ? "" : ` containing ${classes[Number(state.cls)].name}`;
  const first = (number - 1) * PER_PAGE;
  controls.summary.textContent =
    `${total} image(s)${name}; ` +
    (shown.length ? `showing ${first + 1}–${first + shown.length}` : "none to show");
  const thumbs = shown.map((item) => thumbnail(item, classes));
  freePictures(controls.grid);
  controls.grid.replaceChildren(...thumbs.map((thumb) => thumb.link));
  controls.grid.dataset.page = number;
  showApiCalls(apiCalls(shown[0]?.index ?? 0, state, first));
  showError(null);
  await Promise.all(thumbs.map((thumb) => thumb.load(() => generation === drawn)));
}

function thumbnailUrls(index) {
  const sample = splitPath(split, "samples", index);
  return {
    image: apiUrl(`${sample}/image`, { size: THUMBNAIL }),
    label: apiUrl(`${sample}/label`, { format: "png", size: THUMBNAIL }),
  };
}

function thumbnail({ index, id, classes: present }, classes) {
  const image = el("img", { class: "image", alt: `image ${index}` });
  const label = el("img", { class: "label", alt: `label ${index}` });
  // With the server's list of samples, hovering a thumbnail names its classes.
  const names = present ? present.map((entry) => classes[entry.index].name).join(", ") : null;
  const link = el(
    "a",
    { class: "thumb", href: browseUrl(split, index), "data-index": index, title: names },
    el("span", { class: "pictures" }, image, label),
    el("span", { class: "caption", text: id ? `#${index} ${id}` : `#${index}` }),
  );
  const urls = thumbnailUrls(index);
  const load = async (current) => {
    const [picture, overlay] = await Promise.all([getPicture(urls.image), getPicture(urls.label)]);
    if (!current()) {
      URL.revokeObjectURL(picture.src);
      URL.revokeObjectURL(overlay.src);
      return;
    }
    setPicture(image, picture.src);
    setPicture(label, overlay.src);
  };
  return { link, load };
}

function freePictures(container) {
  for (const img of container.querySelectorAll("img")) {
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  }
}

function apiCalls(index, state, offset) {
  const urls = thumbnailUrls(index);
  const calls = [[`split ${split}`, apiUrl(splitPath(split)), null]];
  if (page.presence === "yes") {
    calls.push(["this page's samples", apiUrl(listPath(), listQuery(state.cls, offset)), null]);
  }
  calls.push(
    [`thumbnail of image ${index}`, urls.image, `${index}.jpg`],
    [`thumbnail of label ${index}`, urls.label, `${index}.png`],
  );
  return calls;
}

main().catch(showError);
