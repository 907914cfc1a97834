// synthforge pages: the upload (streamed to POST /datasets with the session's CSRF token) and a job's live
// progress (the server-sent events of GET /jobs/{id}/stream). Same origin only; no other requests.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function setupUpload() {
  const form = document.getElementById("upload");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("file").files[0];
    const status = document.getElementById("upload-status");
    if (!file) return;
    status.textContent = "uploading…";
    const response = await fetch("/datasets?name=" + encodeURIComponent(file.name), {
      method: "POST", body: file, credentials: "same-origin",
      headers: {"X-CSRF-Token": csrfToken(), "Content-Type": "application/octet-stream"},
    });
    if (response.ok) {
      window.location.reload();
    } else {
      const body = await response.json().catch(() => ({detail: response.statusText}));
      status.textContent = "refused: " + body.detail;
      status.className = "error";
    }
  });
}

function setupProgress() {
  const card = document.getElementById("job");
  if (!card || card.dataset.final === "yes") return;
  const list = document.getElementById("events");
  const source = new EventSource("/jobs/" + card.dataset.job + "/stream");
  const show = (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    const data = event.data;
    const fit = () => data.table ? "fitted " + data.table :
      (data.epoch ? "epoch " + data.epoch + (data.epochs ? "/" + data.epochs : "") : "step " + data.step) +
      (data.loss !== undefined ? ", loss " + data.loss.toFixed(4) : "");
    item.textContent = event.kind + ": " + (data.stage || data.state ||
      (event.kind === "fit" ? fit() : "shards committed " + data.committed));
    list.appendChild(item);
    if (data.stage) document.getElementById("stage").textContent = data.stage;
    if (data.state) {
      const state = document.getElementById("state");
      state.textContent = data.state;
      state.className = "state " + data.state;
      if (["succeeded", "failed_gates", "failed", "cancelled"].includes(data.state)) {
        source.close();
        window.location.reload();  // the report and downloads
      }
    }
  };
  for (const kind of ["state", "stage", "fit", "shards"]) source.addEventListener(kind, show);
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) return; };
}

document.addEventListener("DOMContentLoaded", () => { setupUpload(); setupProgress(); });
