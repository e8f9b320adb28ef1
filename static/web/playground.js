// Playgrounds: submit a job, poll its state until it ends, then draw the result.
import { escapeHtml } from "./markdown.js";

const POLL_MS = 400;

function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i += 1) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / (Math.sqrt(na) * Math.sqrt(nb) || 1);
}

function vectors(output) {
  // Embedding output: {"embeddings": [[...], [...]], "dimensions": n}.
  return output.embeddings || [];
}

function scores(output) {
  // Classification output: {"results": [{"label", "scores": {label: score}}]}, one per text.
  const first = output.results?.[0]?.scores || {};
  return Object.entries(first).filter(([, v]) => typeof v === "number");
}

function bar(label, value) {
  const percent = Math.max(0, Math.min(100, value * 100));
  return `<div class="score"><span class="score-label">${escapeHtml(label)}</span>
    <span class="score-track"><span class="score-fill" style="width:${percent.toFixed(1)}%"></span></span>
    <span class="score-value">${value.toFixed(3)}</span></div>`;
}

function render(kind, job, result) {
  if (job.status !== "succeeded") {
    result.innerHTML = `<p class="error-box" role="alert">${escapeHtml(job.error?.message || `The job ended: ${job.status}.`)}</p>`;
    return;
  }
  if (kind === "embeddings") {
    const [a, b] = vectors(job.output);
    const similarity = cosine(a, b);
    result.innerHTML = `<p><strong>${a.length}</strong> dimensions per vector.</p>
      <p class="big">Similarity ${similarity.toFixed(3)}</p>${bar("cosine", Math.max(0, similarity))}`;
  } else {
    const rows = scores(job.output).sort((x, y) => y[1] - x[1]);
    result.innerHTML = rows.map(([label, value]) => bar(label, value)).join("");
  }
}

// A queued job waits for a worker; past this, say so instead of spinning for ever.
const POLL_GIVE_UP_MS = 120_000;

class StillWaiting extends Error {}

async function poll(url) {
  const deadline = Date.now() + POLL_GIVE_UP_MS;
  for (;;) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const job = await response.json();
    if (job.finished) return job;
    if (Date.now() > deadline) throw new StillWaiting();
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

for (const form of document.querySelectorAll("form[data-playground]")) {
  const result = document.querySelector("[data-result]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    for (const old of form.querySelectorAll(".field-error.js")) old.remove();
    for (const invalid of form.querySelectorAll("[aria-invalid]")) invalid.removeAttribute("aria-invalid");
    result.innerHTML = '<p class="generating"><span class="dots" aria-hidden="true"></span> Working…</p>';
    try {
      const response = await fetch(form.action || location.href, { method: "POST", body: new FormData(form) });
      const body = await response.json();
      if (!response.ok) {
        result.innerHTML = `<p class="error-box" role="alert">${escapeHtml(body.error)}</p>`;
        for (const [name, errors] of Object.entries(body.fields || {})) {
          const input = form.elements[name];
          input?.setAttribute("aria-invalid", "true");
          input?.insertAdjacentHTML("afterend", `<p class="field-error js">${escapeHtml(errors.join(" "))}</p>`);
        }
        form.querySelector("[aria-invalid]")?.focus(); // the first field to correct, where the reader is sent
        return;
      }
      render(form.dataset.playground, await poll(body.poll), result);
    } catch (error) {
      result.innerHTML =
        error instanceof StillWaiting
          ? '<p class="error-box" role="alert">The job is still waiting for a worker. It will appear in your history when it ends.</p>'
          : '<p class="error-box" role="alert">Djinn could not be reached. Check your connection and try again.</p>';
    } finally {
      button.disabled = false;
    }
  });
}
