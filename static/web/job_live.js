// A job's page while it runs: its answer appears as it is written, and the page reloads when the job ends.
// The job's own event log, read from the start, cannot miss the end as a feed joined late could.
import { followJob } from "./stream.js";

// Its timings are filled in as they become known: queue wait once it runs, time to first token once text comes.
const TIMING_RETRY_MS = [200, 500, 1000]; // the worker stores the first token's time just after sending it

const page = document.querySelector("[data-running-job]");
if (page) {
  const output = document.querySelector("[data-live-output]");
  const waiting = document.querySelector("[data-output-waiting]");
  let timedFirstToken = false;

  const showTimings = async (wanted, attempt = 0) => {
    let timings;
    try {
      const response = await fetch(page.dataset.jobJson, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      timings = (await response.json()).timings;
    } catch {
      return; // the page still reloads with every timing when the job ends
    }
    for (const cell of document.querySelectorAll("[data-timing]")) {
      const value = timings[cell.dataset.timing];
      if (value && value !== "—") cell.textContent = value;
    }
    if (timings[wanted] === "—" && attempt < TIMING_RETRY_MS.length) {
      setTimeout(() => showTimings(wanted, attempt + 1), TIMING_RETRY_MS[attempt]);
    }
  };

  followJob(page.dataset.runningJob, {
    onStatus: (data) => {
      if (data.status === "running") showTimings("queue");
    },
    onProgress: ({ completed, total }) => {
      waiting.textContent = `Not finished yet: ${completed} of ${total} texts done. This page updates when it is.`;
    },
    onText: (text) => {
      if (text && !timedFirstToken) {
        timedFirstToken = true;
        showTimings("ttft");
      }
      if (!output) return;
      output.textContent = text;
      output.hidden = !text;
      waiting.hidden = Boolean(text);
    },
    onDone: () => location.reload(),
  });
}
