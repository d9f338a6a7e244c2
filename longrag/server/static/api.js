// longrag web app, shared helpers: the page's elements, errors, and requests to /api for the chosen index.
// Every piece of document text goes into the page as a text node (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function show(id, visible) { $(id).hidden = !visible; }

function setStatus(text) { $("status").textContent = text || ""; }

function setError(text) {
  $("error").textContent = text || "";
  show("error", Boolean(text));
}

// FastAPI errors: {"detail": "text"} or {"detail": [{"loc": [...], "msg": "..."}]}
async function errorOf(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  } catch (_) { /* not JSON */ }
  if (response.status === 401) return "signed out: open the address `longrag serve` printed (it carries the token)";
  return `${response.status} ${response.statusText}`;
}

const chosen = { index: null };  // the index the page reads; null: the server's default

// /api/<path> with `params` and the chosen index
function apiUrl(path, params) {
  const query = new URLSearchParams(params || {});
  if (chosen.index) query.set("index", chosen.index);
  const text = query.toString();
  return `/api/${path}${text ? `?${text}` : ""}`;
}

function docPath(docId) { return docId.split("/").map(encodeURIComponent).join("/"); }

// A change (POST, DELETE): the header tells the server it comes from this page, not from a form elsewhere
function write(url, options) {
  return fetch(url, { ...options, headers: { ...(options.headers || {}), "x-longrag": "1" } });
}

// Page and section where the span carries them (`p. 3 · § 6. Trademarks.`, as the CLI prints them);
// the character offsets always.
function whereOf(span) {
  const parts = [];
  const pages = Array.isArray(span.pages) && span.pages.length ? span.pages : (span.page != null ? [span.page] : []);
  if (pages.length) parts.push(pages.length === 1 ? `p. ${pages[0]}` : `pp. ${pages[0]}–${pages[pages.length - 1]}`);
  if (span.section && span.section.length) {
    parts.push(`§ ${Array.isArray(span.section) ? span.section.join(" › ") : span.section}`);
  }
  parts.push(`characters ${span.start}–${span.end}`);
  return parts.join(" · ");
}

// Server-Sent Events read from a fetch body: calls `onEvent(type, data)` for each event
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(type, JSON.parse(data.join("\n")));
    }
  }
}
