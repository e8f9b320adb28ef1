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

const messagesBox = document.getElementById("messages");

// Errors written for operators (server paths, upstream replies) arrive already replaced by a plain sentence
// (inference/job_errors.py): the event log is read by more than this page.
function friendlyError(data) {
  if (data.code === "canceled") return "";
  return data.message || "The model could not finish this answer.";
}

// The page follows a growing answer while the reader is at the bottom, and stays put once they scroll up to read.
const BOTTOM_SLACK_PX = 48;

function atBottom() {
  return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - BOTTOM_SLACK_PX;
}

function scrollToBottom() {
  window.scrollTo(0, document.documentElement.scrollHeight);
}

function streamAnswer(article) {
  const jobId = article.dataset.job;
  const body = article.querySelector("[data-answer]");
  const generating = article.querySelector("[data-generating]");
  const stopButton = article.querySelector("[data-stop]");
  const errorBox = article.querySelector("[data-error]");
  const lengthNote = article.querySelector("[data-length-note]");
  // The answer grows out of any live region (a reader would hear it again at every delta); a
  // screen reader hears it once, whole, when it is done.
  const announcer = article.querySelector("[data-announce]");
  article.classList.add("is-generating");
  article.setAttribute("aria-busy", "true");
  const stopShowingProgress = () => {
    article.classList.remove("is-generating");
    article.removeAttribute("aria-busy");
    generating.hidden = true;
    stopButton.hidden = true;
  };

  const follower = followJob(jobId, {
    onText: (text) => {
      const following = atBottom();
      renderInto(body, text);
      if (following) scrollToBottom();
    },
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
    onRefused: ({ loggedOut }) => {
      stopShowingProgress();
      if (loggedOut) {
        const login = document.createElement("a");
        login.href = `${messagesBox.dataset.loginUrl}?next=${encodeURIComponent(location.pathname)}`;
        login.textContent = "Log in again";
        errorBox.replaceChildren("You are logged out, so this answer stopped updating here. ", login, " to see it.");
      } else {
        errorBox.textContent = "This answer is no longer available to you.";
      }
      errorBox.hidden = false;
    },
    onDone: (data, text) => {
      setStatus(article, data.status);
      article.dataset.finished = "true";
      stopShowingProgress();
      if (data.status === "succeeded") announcer.textContent = `Answer finished: ${text || "no text."}`;
      if (data.finish_reason === "length" && lengthNote) lengthNote.hidden = false; // the answer ends where its max_tokens did
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

  const counter = form.querySelector("[data-char-count]");
  const send = form.querySelector("button[type=submit]");

  // Counted as the server counts (code points, surrounding spaces trimmed), shown from 80% of the
  // model's limit; past it Send waits. A maxlength would cut a long paste short without a word.
  const countCharacters = () => {
    const option = picker?.selectedOptions[0];
    if (!option) return;
    const limit = Number(option.dataset.maxChars);
    const text = textarea.value.trim();
    const count = text.length - (text.match(/[\uD800-\uDBFF]/g)?.length ?? 0);
    const over = count > limit;
    counter.hidden = count < limit * 0.8;
    counter.classList.toggle("over", over);
    counter.textContent = over
      ? `${count.toLocaleString()} characters: ${option.textContent.trim()} reads at most ${limit.toLocaleString()}.`
      : `${count.toLocaleString()} of ${limit.toLocaleString()} characters`;
    send.disabled = over;
  };
  const applyLimits = () => {
    const option = picker?.selectedOptions[0];
    if (!option) return;
    maxTokens.max = option.dataset.maxTokens;
    help.textContent = `1 to ${option.dataset.maxTokens}`;
    countCharacters();
  };
  picker?.addEventListener("change", applyLimits);
  textarea.addEventListener("input", countCharacters);
  applyLimits();

  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      if (!send.disabled) form.requestSubmit(); // Send waits while the message is over the limit
    }
  });
  form.addEventListener("submit", () => {
    send.disabled = true;
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

if (document.querySelector(".messages .msg")) scrollToBottom(); // the newest turn, above the composer
setUpComposer();
