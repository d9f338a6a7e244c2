// longrag web app: search, ask (streamed NDJSON), and the document view with cited spans highlighted.
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
  return `${response.status} ${response.statusText}`;
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

// One clickable span (hit, quote or citation): opens its document with `spans` highlighted.
function spanItem(span, text, spans, extra) {
  const li = el("li");
  const button = el("button", "span-link");
  button.type = "button";
  button.dataset.docId = span.doc_id;
  button.dataset.start = span.start;
  if (extra) button.append(el("span", "score", extra));
  button.append(el("span", "where", `${span.doc_id} · ${whereOf(span)}`), el("span", "text", text));
  button.addEventListener("click", () => openDocument(span.doc_id, spans, span));
  li.append(button);
  return li;
}

let info = null;

async function loadInfo() {
  const response = await fetch("/api/info");
  if (!response.ok) { setError(await errorOf(response)); return; }
  info = await response.json();
  $("index-info").textContent = `index ${info.index.split(/[\\/]/).pop()} · ${info.documents} documents · ` +
    `answers by ${info.generator}` + (info.checker ? `, checked by ${info.checker}` : "");
  $("index-info").title = info.description.join("\n");  // `longrag info`, on hover
}

async function search(query) {
  setError(""); setStatus("Searching…");
  const k = info ? info.search_k : 10;
  const response = await fetch(`/api/search?${new URLSearchParams({ q: query, k })}`);
  if (!response.ok) { setStatus(""); setError(await errorOf(response)); return; }
  const body = await response.json();
  showHits(body.hits, `Documents for “${query}”`);
  setStatus(`${body.hits.length} documents in ${(body.seconds * 1000).toFixed(0)} ms`);
}

function showHits(hits, title) {
  $("results-title").textContent = title;
  const list = $("hits");
  list.replaceChildren();
  for (const hit of hits) {
    const span = { ...hit, kind: "hit" };
    list.append(spanItem(span, hit.snippet, [span], hit.score.toFixed(3)));
  }
  if (!hits.length) list.append(el("li", "muted", "no results"));
  show("results", true);
}

function resetAnswer() {
  $("quotes").replaceChildren();
  $("citations").replaceChildren();
  $("answer-text").textContent = "";
  $("answer-text").className = "answer";
  $("reading").textContent = "";
  $("answer-meta").textContent = "";
  show("reading", false);
  show("citations-box", false);
  show("answer", false);
}

let answerSpans = [];  // the quotes and citations of the current answer: what a document view highlights

function handleEvent(event) {
  if (event.type === "started") {
    setStatus(event.queued ? "Waiting for the answer before this one…" : "Finding the documents…");
  } else if (event.type === "hits") {
    showHits(event.hits, "Documents read");
    setStatus("Reading the evidence (the model runs on the CPU: this takes a while)…");
  } else if (event.type === "quotes") {
    const quotes = event.quotes.map((q) => ({ ...q, kind: "quote" }));
    answerSpans = quotes.slice();
    for (const quote of quotes) $("quotes").append(spanItem(quote, `“${quote.text}”`, answerSpans));
    if (!quotes.length) $("quotes").append(el("li", "muted", "no sentence of the documents matches the question"));
    show("answer", true);
  } else if (event.type === "answer") {
    const text = $("answer-text");
    if (event.withheld) {
      text.textContent = `No answer shown: ${event.withheld}. Read the quotes.`;
      text.className = "answer withheld";
      $("reading").textContent = `(the model's reading was: ${event.reading})`;
      show("reading", true);
    } else {
      text.textContent = event.answer;
    }
    const cited = event.citations.map((c) => ({ ...c, kind: "cite" }));
    answerSpans.push(...cited);
    for (const cite of cited) $("citations").append(spanItem(cite, cite.text, answerSpans, `[${cite.block}]`));
    show("citations-box", cited.length > 0);
    show("answer", true);
  } else if (event.type === "done") {
    const a = event.answer;
    const relevance = a.relevance === null ? "" : `, relevance ${a.relevance.toFixed(2)}`;
    $("answer-meta").textContent = `${a.selector}; ${a.tokens_in} prompt tokens${relevance}; ${event.seconds.toFixed(1)} s`;
    setStatus("");
  } else if (event.type === "error") {
    setStatus(""); setError(event.message);
  }
}

async function ask(question) {
  setError(""); resetAnswer(); answerSpans = [];
  $("ask-button").disabled = true;
  try {
    const response = await fetch("/api/ask", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question }),
    });
    if (!response.ok) { setStatus(""); setError(await errorOf(response)); return; }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.trim()) handleEvent(JSON.parse(line));
      }
    }
  } catch (err) {
    setStatus(""); setError(`the answer stopped: ${err}`);
  } finally {
    $("ask-button").disabled = false;
  }
}

// The text with every span of `spans` marked: cut at every span boundary, each piece covered by a
// span becomes a <mark> (quote over hit over citation) holding a text node.
function highlighted(text, spans, focus) {
  const cuts = new Set([0, text.length]);
  for (const s of spans) { cuts.add(Math.max(0, Math.min(s.start, text.length))); cuts.add(Math.max(0, Math.min(s.end, text.length))); }
  const bounds = [...cuts].sort((a, b) => a - b);
  const fragment = document.createDocumentFragment();
  const rank = { quote: 3, hit: 2, cite: 1 };
  for (let i = 0; i + 1 < bounds.length; i++) {
    const [a, b] = [bounds[i], bounds[i + 1]];
    const piece = document.createTextNode(text.slice(a, b));
    const over = spans.filter((s) => s.start <= a && b <= s.end);
    if (!over.length) { fragment.append(piece); continue; }
    const top = over.reduce((x, y) => ((rank[y.kind] || 0) > (rank[x.kind] || 0) ? y : x));
    const mark = el("mark", top.kind || "cite");
    if (focus && focus.start <= a && b <= focus.end) mark.classList.add("focus");
    mark.title = over.map((s) => `${s.kind}${s.block ? ` [${s.block}]` : ""}: ${whereOf(s)}`).join("\n");
    mark.append(piece);
    fragment.append(mark);
  }
  return fragment;
}

async function openDocument(docId, spans, focus) {
  setError("");
  const response = await fetch(`/api/documents/${docId.split("/").map(encodeURIComponent).join("/")}`);
  if (!response.ok) { setError(await errorOf(response)); return; }
  const doc = await response.json();
  const mine = spans.filter((s) => s.doc_id === docId);
  $("doc-title").textContent = doc.doc_id;
  const counts = `${doc.n_chars.toLocaleString()} characters, ${doc.n_tokens.toLocaleString()} tokens`;
  $("doc-where").textContent = focus ? `${whereOf(focus)} · ${mine.length} highlighted · ${counts}` : counts;
  const body = $("doc-text");
  body.replaceChildren(highlighted(doc.text, mine, focus));
  show("document", true);
  const first = body.querySelector("mark.focus") || body.querySelector("mark");
  if (first) first.scrollIntoView({ block: "center" });
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("query").value); });
  $("ask-form").addEventListener("submit", (e) => { e.preventDefault(); ask($("question").value); });
  $("doc-close").addEventListener("click", () => show("document", false));
  loadInfo();
});
