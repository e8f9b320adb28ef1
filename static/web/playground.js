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

// The session ended (a log-out elsewhere, expiry) or the page's CSRF token went stale: Django answered
// with the log-in page or a 403 page, not JSON. Retrying cannot help; reloading (and logging in) can.
class PageExpired extends Error {}

async function jsonOf(response) {
  const isJson = (response.headers.get("Content-Type") || "").startsWith("application/json");
  if (response.redirected || response.status === 403 || !isJson) throw new PageExpired();
  return response.json();
}

async function poll(url) {
  const deadline = Date.now() + POLL_GIVE_UP_MS;
  for (;;) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const job = await jsonOf(response);
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
      const body = await jsonOf(response);
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
      if (error instanceof PageExpired) {
        const login = `/login/?next=${encodeURIComponent(location.pathname)}`;
        result.innerHTML = `<p class="error-box" role="alert">This page has expired: you may have been logged out.
          <a href="${login}">Log in again</a> and try once more.</p>`;
      } else {
        result.innerHTML =
          error instanceof StillWaiting
            ? '<p class="error-box" role="alert">The job is still waiting for a worker. It will appear in your history when it ends.</p>'
            : '<p class="error-box" role="alert">Djinn could not be reached. Check your connection and try again.</p>';
      }
    } finally {
      button.disabled = false;
    }
  });
}
