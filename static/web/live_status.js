// Live status badges: the user's job feed (/ws/jobs/) tells every open tab when a job changes.
const LABELS = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled", expired: "Expired" };

function update(change) {
  for (const row of document.querySelectorAll(`[data-job-row="${CSS.escape(change.job)}"]`)) {
    const badge = row.querySelector("[data-status-badge]");
    if (badge) {
      badge.textContent = LABELS[change.status] || change.status;
      (badge.classList.contains("badge") ? badge : row).className = `badge status-${change.status}`;
    }
    const tokens = row.querySelector("[data-tokens]");
    if (tokens && Number.isInteger(change.tokens)) tokens.textContent = change.tokens.toLocaleString("en-US");
  }
}

// Where the feed stood when the page was rendered: changes made before the socket is up still arrive.
let position = document.querySelector("script[data-feed-position]")?.dataset.feedPosition || "";

function connect(delay = 1000) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const after = position ? `?after=${encodeURIComponent(position)}` : "";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${after}`);
  socket.addEventListener("message", (message) => {
    let change;
    try {
      change = JSON.parse(message.data);
    } catch {
      return; /* ignore anything that is not a job change */
    }
    if (change.type !== "job") return;
    if (change.position) position = change.position;
    update(change);
  });
  socket.addEventListener("close", (close) => {
    if (close.code !== 4401) setTimeout(() => connect(Math.min(delay * 2, 15000)), delay);
  });
}

if (document.querySelector("[data-job-row]")) connect();
