// The chat page: render answers as safe Markdown, stream unfinished ones, Stop, Copy, and the composer.
import { renderInto } from "./markdown.js";
import { followJob, forgetProgress } from "./stream.js";
import { copyText } from "./copy.js";

const STATUS_LABELS = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  canceled: "Canceled",
  expired: "Expired",
};

function setStatus(article, status) {
  article.dataset.status = status;
  const badge = article.querySelector("[data-status-badge]");
  if (badge) {
    badge.textContent = STATUS_LABELS[status] || status;
    badge.className = `badge status-${status}`;
  }
}

// Errors written for operators (server paths, upstream replies) are replaced for non-staff; the page says which.
const messagesBox = document.getElementById("messages");
const hiddenErrorCodes = new Set((messagesBox?.dataset.hiddenErrorCodes || "").split(" ").filter(Boolean));

function friendlyError(data) {
  if (data.code === "canceled") return "";
  if (hiddenErrorCodes.has(data.code)) return messagesBox.dataset.hiddenErrorMessage;
  return data.message || "The model could not finish this answer.";
}

function streamAnswer(article) {
  const jobId = article.dataset.job;
  const body = article.querySelector("[data-answer]");
  const generating = article.querySelector("[data-generating]");
  const stopButton = article.querySelector("[data-stop]");
  const errorBox = article.querySelector("[data-error]");
  article.classList.add("is-generating");
  article.setAttribute("aria-busy", "true");

  const follower = followJob(jobId, {
    onText: (text) => renderInto(body, text),
    onStatus: (data) => data.status && setStatus(article, data.status),
    onConnection: (state) => {
      generating.lastChild.textContent = state === "lost" ? " Connection lost, reconnecting…" : " Generating…";
    },
    onError: (data) => {
      const message = friendlyError(data);
      if (message) {
        errorBox.textContent = message;
        errorBox.hidden = false;
      }
    },
    onDone: (data) => {
      setStatus(article, data.status);
      article.classList.remove("is-generating");
      article.removeAttribute("aria-busy");
      article.dataset.finished = "true";
      generating.hidden = true;
      stopButton.hidden = true;
      if (data.status === "canceled") {
        errorBox.textContent = "Stopped. The answer so far is kept.";
        errorBox.classList.add("notice");
        errorBox.hidden = false;
      }
    },
  });

  stopButton.addEventListener("click", () => {
    stopButton.disabled = true;
    stopButton.textContent = "Stopping…";
    follower.stop();
  });
}

function setUpComposer() {
  const form = document.getElementById("composer");
  if (!form) return;
  const textarea = form.querySelector("textarea");
  const picker = form.querySelector("[data-model-picker]");
  const maxTokens = form.querySelector("#id_max_tokens");
  const help = form.querySelector("[data-max-tokens-help]");

  const applyLimits = () => {
    const option = picker?.selectedOptions[0];
    if (!option) return;
    maxTokens.max = option.dataset.maxTokens;
    help.textContent = `1 to ${option.dataset.maxTokens}`;
    textarea.maxLength = Number(option.dataset.maxChars);
  };
  picker?.addEventListener("change", applyLimits);
  applyLimits();

  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", () => {
    form.querySelector("button[type=submit]").disabled = true;
  });
  if (!document.querySelector("[data-error][role=alert]:not([hidden])")) textarea.focus();
}

for (const body of document.querySelectorAll("[data-md]")) renderInto(body, body.textContent);

for (const article of document.querySelectorAll(".msg-assistant[data-job]")) {
  if (article.dataset.finished === "false") streamAnswer(article);
  else forgetProgress(article.dataset.job); // finished while this tab was away
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const body = button.closest(".msg").querySelector("[data-md]");
  copyText(body.dataset.source ?? body.textContent, button);
});

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

document.querySelector(".messages .msg:last-child")?.scrollIntoView({ block: "end" });
setUpComposer();
