// longrag web app: search, and ask with the answer streamed stage by stage (Server-Sent Events):
// the documents read, the quotes as soon as they are chosen, then the answer, then done.
"use strict";

// One clickable span (hit, quote, answer or citation): opens its document with `spans` marked.
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
  const response = await fetch(apiUrl("info"));
  if (!response.ok) { setError(await errorOf(response)); return; }
  info = await response.json();
  $("index-info").textContent = `index ${info.name} · ${info.documents} documents · ` +
    `answers by ${info.generator}` + (info.checker ? `, checked by ${info.checker}` : "");
  $("index-info").title = info.description.join("\n");  // `longrag info`, on hover
  showUploads(info.uploads);
}

async function search(query) {
  setError(""); setStatus("Searching…");
  const k = info ? info.search_k : 10;
  const response = await fetch(apiUrl("search", { q: query, k }));
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
  $("answer-text").replaceChildren();
  $("answer-text").className = "answer";
  $("reading").textContent = "";
  $("answer-meta").textContent = "";
  show("reading", false);
  show("citations-box", false);
  show("answer", false);
}

let answerSpans = [];  // the quotes, answer span and citations of the current answer: what a document view marks

function showQuotes(quotes) {
  const marked = quotes.map((q) => ({ ...q, kind: "quote" }));
  answerSpans = marked.concat(answerSpans.filter((s) => s.kind !== "quote"));
  $("quotes").replaceChildren();
  for (const quote of marked) $("quotes").append(spanItem(quote, `“${quote.text}”`, answerSpans));
  if (!marked.length) $("quotes").append(el("li", "muted", "no sentence of the documents matches the question"));
  show("answer", true);
}

// The answer span inside the quote that holds it, as the CLI marks it »…«
function markInQuote(span) {
  const quotes = answerSpans.filter((s) => s.kind === "quote");
  const i = quotes.findIndex((q) => q.doc_id === span.doc_id && q.start <= span.start && span.end <= q.end);
  if (i < 0) return;
  const [quote, shown] = [quotes[i], $("quotes").children[i].querySelector(".text")];
  const [a, b] = [span.start - quote.start, span.end - quote.start];
  shown.replaceChildren("“" + quote.text.slice(0, a), el("mark", "answer", quote.text.slice(a, b)),
                        quote.text.slice(b) + "”");
}

function showAnswer(event) {
  const text = $("answer-text");
  if (!$("quotes").children.length && event.quotes) showQuotes(event.quotes);
  if (event.withheld) {
    text.textContent = `No answer shown: ${event.withheld}.` + (/quote/.test(event.withheld) ? "" : " Read the quotes.");
    text.className = "answer withheld";
    $("reading").textContent = `(the model's reading was: ${event.reading})`;
    show("reading", true);
  } else if (event.answer_span) {  // the answer is a span of a document: a link to it, marked there
    const span = { ...event.answer_span, kind: "answer" };
    answerSpans.push(span);
    const link = el("button", "answer-link", event.answer);
    link.type = "button";
    link.title = `${span.doc_id} · ${whereOf(span)}`;
    link.addEventListener("click", () => openDocument(span.doc_id, answerSpans, span));
    text.replaceChildren(link);
    markInQuote(span);
  } else {
    text.textContent = event.answer;
  }
  const cited = (event.citations || []).map((c) => ({ ...c, kind: "cite" }));
  answerSpans.push(...cited);
  for (const cite of cited) $("citations").append(spanItem(cite, cite.text, answerSpans, `[${cite.block}]`));
  show("citations-box", cited.length > 0);
  show("answer", true);
}

function handleEvent(type, event) {
  if (type === "started") {
    setStatus(event.queued ? "Waiting for the answer before this one…" : "Finding the documents…");
  } else if (type === "hits") {
    showHits(event.hits, "Documents read");
    setStatus("Choosing the quotes…");
  } else if (type === "quotes") {
    showQuotes(event.quotes);
    setStatus("Reading the quotes (the model runs on the CPU: this takes a while)…");
  } else if (type === "answer") {
    showAnswer(event);
  } else if (type === "done") {
    const a = event.answer;
    const relevance = a.relevance === null ? "" : `, relevance ${a.relevance.toFixed(2)}`;
    $("answer-meta").textContent = `${a.selector}; ${a.tokens_in} prompt tokens${relevance}; ${event.seconds.toFixed(1)} s`;
    setStatus("");
  } else if (type === "error") {
    setStatus(""); setError(event.message);
  }
}

async function ask(question) {
  setError(""); resetAnswer(); answerSpans = [];
  $("ask-button").disabled = true;
  try {
    const response = await write(apiUrl("ask"), {
      method: "POST", headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ question }),
    });
    if (!response.ok) { setStatus(""); setError(await errorOf(response)); return; }
    await readEvents(response, handleEvent);
  } catch (err) {
    setStatus(""); setError(`the answer stopped: ${err}`);
  } finally {
    $("ask-button").disabled = false;
  }
}

async function chooseIndex(name) {
  chosen.index = name;
  resetAnswer(); show("results", false); show("document", false); setError("");
  await loadInfo();
  await loadLibrary();
}

async function loadIndexes() {
  const response = await fetch("/api/indexes");
  if (!response.ok) { setError(await errorOf(response)); return; }
  const body = await response.json();
  const select = $("index-choice");
  select.replaceChildren(...body.indexes.map((i) => el("option", null, `${i.name} (${i.documents})`)));
  body.indexes.forEach((i, n) => { select.options[n].value = i.name; });
  select.value = chosen.index || body.default;
  show("index-choice", body.indexes.length > 1);
}

document.addEventListener("DOMContentLoaded", async () => {
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("query").value); });
  $("ask-form").addEventListener("submit", (e) => { e.preventDefault(); ask($("question").value); });
  $("index-choice").addEventListener("change", (e) => chooseIndex(e.target.value));
  setUpDocumentView();
  setUpUploads();
  await loadIndexes();
  await loadInfo();
  await loadLibrary();
  followJobs();
});
