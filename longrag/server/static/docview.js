// The document view: the whole extracted text with the spans marked, or, for a PDF, its page as it
// looks (rendered by the server) with the lines of the spans boxed; a toggle switches between the two.
"use strict";

const view = { doc: null, spans: [], focus: null, page: 1, mode: "text" };
const RANK = { answer: 4, quote: 3, hit: 2, cite: 1 };

// The text with every span of `spans` marked: cut at every span boundary, each piece covered by a
// span becomes a <mark> (answer over quote over hit over citation) holding a text node.
function highlighted(text, spans, focus) {
  const cuts = new Set([0, text.length]);
  for (const s of spans) { cuts.add(Math.max(0, Math.min(s.start, text.length))); cuts.add(Math.max(0, Math.min(s.end, text.length))); }
  const bounds = [...cuts].sort((a, b) => a - b);
  const fragment = document.createDocumentFragment();
  for (let i = 0; i + 1 < bounds.length; i++) {
    const [a, b] = [bounds[i], bounds[i + 1]];
    const piece = document.createTextNode(text.slice(a, b));
    const over = spans.filter((s) => s.start <= a && b <= s.end);
    if (!over.length) { fragment.append(piece); continue; }
    const top = over.reduce((x, y) => ((RANK[y.kind] || 0) > (RANK[x.kind] || 0) ? y : x));
    const mark = el("mark", top.kind || "cite");
    if (focus && focus.start <= a && b <= focus.end) mark.classList.add("focus");
    mark.title = over.map((s) => `${s.kind}${s.block ? ` [${s.block}]` : ""}: ${whereOf(s)}`).join("\n");
    mark.append(piece);
    fragment.append(mark);
  }
  return fragment;
}

function isPdf(doc) { return doc.metadata && doc.metadata.format === "pdf" && Array.isArray(doc.metadata.page_starts); }

// The 1-based page holding character `offset` of a PDF's text
function pageAt(doc, offset) {
  const starts = doc.metadata.page_starts;
  let page = 1;
  while (page < starts.length && starts[page] <= offset) page++;
  return page;
}

async function openDocument(docId, spans, focus) {
  setError("");
  const response = await fetch(apiUrl(`documents/${docPath(docId)}`));
  if (!response.ok) { setError(await errorOf(response)); return; }
  const doc = await response.json();
  view.doc = doc;
  view.spans = spans.filter((s) => s.doc_id === docId);
  view.focus = focus || null;
  $("doc-title").textContent = doc.doc_id;
  const counts = `${doc.n_chars.toLocaleString()} characters, ${doc.n_tokens.toLocaleString()} tokens`;
  $("doc-where").textContent = focus ? `${whereOf(focus)} · ${view.spans.length} marked · ${counts}` : counts;
  $("doc-text").replaceChildren(highlighted(doc.text, view.spans, focus));
  show("view-toggle", isPdf(doc));
  show("document", true);
  if (isPdf(doc)) {
    view.page = pageAt(doc, focus ? focus.start : 0);
    await showMode("page");
  } else {
    await showMode("text");
  }
}

async function showMode(mode) {
  view.mode = mode;
  $("view-page").setAttribute("aria-pressed", String(mode === "page"));
  $("view-text").setAttribute("aria-pressed", String(mode === "text"));
  show("doc-pages", mode === "page");
  show("doc-text", mode === "text");
  if (mode === "page") {
    await showPage(view.page);
  } else {
    const first = $("doc-text").querySelector("mark.focus") || $("doc-text").querySelector("mark");
    if (first) first.scrollIntoView({ block: "center" });
  }
}

async function showPage(page) {
  const doc = view.doc;
  const starts = doc.metadata.page_starts;
  view.page = Math.max(1, Math.min(page, starts.length));
  const [from, to] = [starts[view.page - 1], view.page < starts.length ? starts[view.page] : doc.n_chars];
  const here = view.spans.filter((s) => s.start < to && s.end > from);
  $("page-number").textContent = `page ${view.page} of ${starts.length}`;
  $("page-prev").disabled = view.page <= 1;
  $("page-next").disabled = view.page >= starts.length;
  $("page-note").textContent = "";
  const sheet = $("page-sheet");
  sheet.querySelectorAll(".box-mark").forEach((node) => node.remove());
  const image = $("page-image");
  const width = Math.min(2000, Math.round(sheet.clientWidth * (window.devicePixelRatio || 1)) || 1000);
  const loaded = new Promise((resolve) => { image.onload = resolve; image.onerror = resolve; });
  image.src = apiUrl(`page/${docPath(doc.doc_id)}`, { page: view.page, width: Math.max(200, width) });
  image.alt = `${doc.doc_id}, page ${view.page}`;
  const params = [["page", view.page], ...here.map((s) => ["span", `${s.start}:${s.end}`])];
  const response = await fetch(apiUrl(`boxes/${docPath(doc.doc_id)}`, params));
  await loaded;
  if (!response.ok) {  // a PDF changed since it was indexed: its text is still what was indexed
    const reason = await errorOf(response);
    await showMode("text");
    setError(reason);
    return;
  }
  const body = await response.json();
  if (body.note) $("page-note").textContent = body.note;
  let focused = null;
  body.boxes.forEach((lines, i) => {
    const span = here[i];
    for (const line of lines) {
      const box = el("div", `box-mark ${span.kind || "cite"}`);
      Object.assign(box.style, { left: `${line.x * 100}%`, top: `${line.y * 100}%`,
                                 width: `${line.w * 100}%`, height: `${line.h * 100}%` });
      box.title = `${span.kind}: ${whereOf(span)}`;
      if (span === view.focus) {
        box.classList.add("focus");
        focused = focused || box;
      }
      sheet.append(box);
    }
  });
  if (focused) focused.scrollIntoView({ block: "center" });
}

function setUpDocumentView() {
  $("doc-close").addEventListener("click", () => show("document", false));
  $("view-page").addEventListener("click", () => showMode("page"));
  $("view-text").addEventListener("click", () => showMode("text"));
  $("page-prev").addEventListener("click", () => showPage(view.page - 1));
  $("page-next").addEventListener("click", () => showPage(view.page + 1));
}
