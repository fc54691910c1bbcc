// Small DOM helpers shared by the pages: elements, colour swatches, errors,
// breadcrumbs and the list of copyable API calls.

import { base, curlLine } from "./api.js";

/** An element with attributes (``text`` sets its text) and children. */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") element.textContent = value;
    else if (value !== null && value !== undefined && value !== false) element.setAttribute(key, value);
  }
  element.append(...children);
  return element;
}

export function rgb(color) {
  return `rgb(${color[0]}, ${color[1]}, ${color[2]})`;
}

export function swatch(color) {
  const box = el("span", { class: "swatch", title: rgb(color) });
  box.style.backgroundColor = rgb(color);
  return box;
}

export function browseUrl(...parts) {
  return [`${base}/browse`, ...parts.map((part) => encodeURIComponent(part))].join("/");
}

/** Show ``error`` (an ApiError or any Error) in the page's error box, or hide it (null). */
export function showError(error, id = "error") {
  const box = document.getElementById(id);
  box.hidden = error === null;
  box.textContent = error === null ? "" : error.detail || error.message;
}

export function setCrumbs(...items) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren();
  for (const [text, href] of items) {
    nav.append(el("span", { class: "sep", text: "›" }), href ? el("a", { href, text }) : el("span", { text }));
  }
}

/** Replace the API list with one row per [what, url, output file] call. */
export function showApiCalls(calls) {
  const list = document.getElementById("api-calls");
  list.replaceChildren(...calls.map(([what, url, output]) => apiCall(what, url, output)));
}

function apiCall(what, url, output) {
  return el(
    "div",
    { class: "api-call" },
    el("span", { class: "what", text: what }),
    copyable("url", url),
    copyable("curl", curlLine(url, output)),
  );
}

function copyable(kind, text) {
  const field = el("input", { class: kind, value: text, readonly: "", spellcheck: "false" });
  const button = el("button", { type: "button", class: "copy", text: "copy" });
  button.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "copied";
    } catch {
      button.textContent = "selected"; // no clipboard access here: the text is selected to copy
    }
    setTimeout(() => (button.textContent = "copy"), 1500);
  });
  return el("span", { class: "copyable" }, field, button);
}

/** Call ``fn`` ``ms`` after the last of a burst of calls. */
export function debounce(fn, ms = 250) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Show the picture ``src`` (a blob: URL) in ``img``, freeing the one it showed before. */
export function setPicture(img, src) {
  const old = img.getAttribute("src");
  img.addEventListener("load", () => (img.dataset.ready = "yes"), { once: true });
  delete img.dataset.ready;
  img.src = src;
  if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
}
