// Documents of the chosen index: the list (uploaded ones can be removed), uploads, and the indexing
// jobs as the server reports them (Server-Sent Events from /api/events).
"use strict";

let uploadLimits = null;  // /api/info's uploads: null where the server takes none

function megabytes(bytes) { return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 1 : 0)} MB`; }

function showUploads(limits) {
  uploadLimits = limits;
  show("upload-form", Boolean(limits));
  if (limits) {
    $("upload-limits").textContent = `PDF, Word (.docx), HTML or text; up to ${limits.max_files} files and ` +
      `${megabytes(limits.max_upload)} at a time. Drop files here or choose them.`;
  }
}

async function upload(files) {
  setError("");
  files = [...files];
  if (!files.length) return;
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total > uploadLimits.max_upload) {  // refused here, before megabytes travel for nothing
    setError(`${files.map((f) => f.name).join(", ")}: ${megabytes(total)}, over the ` +
             `${megabytes(uploadLimits.max_upload)} this server takes at once; nothing was uploaded`);
    return;
  }
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  $("upload-button").disabled = true;
  setStatus(`Uploading ${files.length} file${files.length > 1 ? "s" : ""}…`);
  try {
    const response = await write(apiUrl("documents"), { method: "POST", body: form });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) { setError(typeof body.detail === "string" ? body.detail : await errorOf(response)); return; }
    if (body.refused.length) setError(body.refused.map((r) => r.reason).join("; "));
    $("upload-files").value = "";
  } catch (err) {
    setError(`the upload stopped: ${err}`);
  } finally {
    setStatus("");
    $("upload-button").disabled = false;
  }
}

const jobRows = new Map();  // job id → its <li>
const STATES = { queued: "waiting", reading: "reading", encoding: "encoding", indexed: "indexed",
                 removing: "removing", removed: "removed", failed: "failed" };

function showJob(job) {
  let row = jobRows.get(job.id);
  if (!row) {
    row = el("li", "job");
    row.dataset.job = job.id;
    jobRows.set(job.id, row);
    $("jobs").prepend(row);
  }
  row.dataset.state = job.state;
  row.dataset.docId = job.doc_id;
  row.className = `job ${job.state}`;
  const what = job.action === "remove" ? "remove" : "add";
  row.replaceChildren(el("span", "job-state", STATES[job.state] || job.state),
                      el("span", "job-doc", `${what} ${job.doc_id}`),
                      el("span", "muted", job.detail ? ` · ${job.detail}` : ""));
}

function followJobs() {
  const source = new EventSource("/api/events");  // reconnects by itself, from the last event it saw
  source.addEventListener("job", async (message) => {
    const job = JSON.parse(message.data);
    showJob(job);
    if (["indexed", "removed"].includes(job.state) && info && job.index === info.name) {
      await loadInfo();
      await loadLibrary();
    }
  });
}

async function loadLibrary() {
  const response = await fetch(apiUrl("documents"));
  if (!response.ok) { setError(await errorOf(response)); return; }
  const body = await response.json();
  $("library-title").textContent = `Documents (${body.documents.length})`;
  const list = $("doc-list");
  list.replaceChildren();
  for (const doc of body.documents) {
    const item = el("li");
    const open = el("button", "link", doc.doc_id);
    open.type = "button";
    open.addEventListener("click", () => openDocument(doc.doc_id, [], null));
    item.append(open, el("span", "muted", ` ${doc.n_tokens.toLocaleString()} tokens`));
    if (doc.uploaded && uploadLimits) {
      const remove = el("button", "remove", "Remove");
      remove.type = "button";
      remove.title = `Remove ${doc.doc_id} from the index and delete its file`;
      remove.addEventListener("click", () => removeDocument(doc.doc_id, remove));
      item.append(remove);
    }
    list.append(item);
  }
}

async function removeDocument(docId, button) {
  button.disabled = true;
  const response = await write(apiUrl(`documents/${docPath(docId)}`), { method: "DELETE" });
  if (!response.ok) { setError(await errorOf(response)); button.disabled = false; }
}

function setUpUploads() {
  const form = $("upload-form");
  form.addEventListener("submit", (e) => { e.preventDefault(); upload($("upload-files").files); });
  form.addEventListener("dragover", (e) => { e.preventDefault(); form.classList.add("over"); });
  form.addEventListener("dragleave", () => form.classList.remove("over"));
  form.addEventListener("drop", (e) => { e.preventDefault(); form.classList.remove("over"); upload(e.dataTransfer.files); });
}
