// The dataset page: splits with usable counts for a crop size, excluded files,
// the class legend and, where the server has it, each split's class statistics.

import { apiUrl, getJson, getPicture, splitPath } from "./api.js";
import { browseUrl, debounce, el, setCrumbs, setPicture, showApiCalls, showError, swatch } from "./dom.js";

const page = document.body.dataset;

async function main() {
  setCrumbs(["dataset", null]);
  const [dataset, classes, colormap] = await Promise.all([
    getJson("/v1/dataset"),
    getJson("/v1/classes"),
    getJson("/v1/colormap"),
  ]);
  document.getElementById("title").textContent = `Dataset ${dataset.name}`;
  showLegend(classes, colormap);
  showExcluded(dataset.excluded || []);
  const splits = dataset.splits.map((split) => split.name);
  const form = document.getElementById("crop-form");
  const refresh = () => showSplits(dataset.splits).catch(showError);
  form.addEventListener("input", debounce(refresh));
  await refresh();
  if (page.stats === "yes") await showStats(splits);
  else document.getElementById("stats").append(el("p", { text: "This server does not serve class statistics." }));
}

function cropQuery() {
  return {
    height: document.getElementById("crop-height").value,
    width: document.getElementById("crop-width").value,
    small: document.getElementById("crop-small").value,
    batch_size: document.getElementById("batch-size").value,
  };
}

async function showSplits(splits) {
  const query = cropQuery();
  const rows = await Promise.all(splits.map((split) => getJson(splitPath(split.name), query)));
  const body = document.querySelector("#splits tbody");
  body.replaceChildren(
    ...rows.map((info) =>
      el(
        "tr",
        { "data-split": info.name },
        el("td", {}, el("a", { href: browseUrl(info.name), text: info.name })),
        el("td", { class: "number", text: info.size }),
        el("td", { class: "number usable", text: info.usable }),
        el("td", { class: "number", text: info.batches }),
        el("td", {}, el("a", { href: browseUrl(info.name), text: "gallery →" })),
      ),
    ),
  );
  showError(null);
  const calls = [
    ["dataset", apiUrl("/v1/dataset"), null],
    ["classes", apiUrl("/v1/classes"), null],
    ["legend picture", apiUrl("/v1/colormap", { format: "png" }), "legend.png"],
    ...splits.map((split) => [`split ${split.name}`, apiUrl(splitPath(split.name), query), null]),
  ];
  if (page.stats === "yes") {
    for (const split of splits) {
      calls.push([`statistics of ${split.name}`, apiUrl(splitPath(split.name, "stats")), null]);
      const picture = apiUrl(splitPath(split.name, "stats"), { format: "png" });
      calls.push([`statistics picture of ${split.name}`, picture, `stats-${split.name}.png`]);
    }
  }
  showApiCalls(calls);
}

function showExcluded(excluded) {
  document.getElementById("excluded-summary").textContent =
    excluded.length === 0 ? "No file was excluded." : `${excluded.length} file(s) could not be read and are left out:`;
  document.querySelector("#excluded tbody").replaceChildren(
    ...excluded.map((file) => el("tr", {}, el("td", { text: file.name }), el("td", { text: file.reason }))),
  );
  document.getElementById("excluded").hidden = excluded.length === 0;
}

function showLegend(classes, colormap) {
  const rows = classes.map((entry) => [entry.color, entry.index, entry.name]);
  rows.push([colormap.ignore_color, colormap.ignore_index, "ignore (border, difficult)"]);
  document.querySelector("#legend tbody").replaceChildren(
    ...rows.map(([color, index, name]) =>
      el(
        "tr",
        {},
        el("td", {}, swatch(color)),
        el("td", { class: "number", text: index }),
        el("td", { text: name }),
        el("td", { class: "mono", text: color.join(", ") }),
      ),
    ),
  );
}

async function showStats(splits) {
  const box = document.getElementById("stats");
  for (const split of splits) {
    const img = el("img", { class: "stats", alt: `class statistics of ${split}` });
    box.append(el("figure", {}, img, el("figcaption", { text: split })));
    const { src } = await getPicture(apiUrl(splitPath(split, "stats"), { format: "png" }));
    setPicture(img, src);
  }
}

main().catch(showError);
