// A job's page while it runs: its answer appears as it is written, and the page reloads when the job ends.
// The job's own event log, read from the start, cannot miss the end as a feed joined late could.
import { followJob } from "./stream.js";

const page = document.querySelector("[data-running-job]");
if (page) {
  const output = document.querySelector("[data-live-output]");
  const waiting = document.querySelector("[data-output-waiting]");
  followJob(page.dataset.runningJob, {
    onText: (text) => {
      if (!output) return;
      output.textContent = text;
      output.hidden = !text;
      waiting.hidden = Boolean(text);
    },
    onDone: () => location.reload(),
  });
}
