// Live status badges: the user's job feed (/ws/jobs/) tells every open tab when a job changes.
const LABELS = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled", expired: "Expired" };

function update(change) {
  for (const row of document.querySelectorAll(`[data-job-row="${CSS.escape(change.job)}"]`)) {
    const badge = row.querySelector("[data-status-badge]");
    if (badge) {
      badge.textContent = LABELS[change.status] || change.status;
      (badge.classList.contains("badge") ? badge : row).className = `badge status-${change.status}`;
    }
  }
}

function connect(delay = 1000) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/`);
  socket.addEventListener("message", (message) => {
    try {
      const change = JSON.parse(message.data);
      if (change.type === "job") update(change);
    } catch {
      /* ignore anything that is not a job change */
    }
  });
  socket.addEventListener("close", (close) => {
    if (close.code !== 4401) setTimeout(() => connect(Math.min(delay * 2, 15000)), delay);
  });
}

if (document.querySelector("[data-job-row]")) connect();
