// Follow one job's event log over the websocket, resuming after the last seq seen.
// Progress ({seq, text}) lives in sessionStorage, so a reload continues where it was:
// every event after `seq` arrives exactly once, so nothing is doubled or lost.

const RETRY_MS = [500, 1000, 2000, 4000, 8000];

function storageKey(jobId) {
  return `djinn:job:${jobId}`;
}

export function loadProgress(jobId) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(storageKey(jobId)) || "null");
    if (saved && Number.isInteger(saved.seq) && typeof saved.text === "string") return saved;
  } catch {
    /* a corrupt entry is the same as none */
  }
  return { seq: 0, text: "" };
}

function saveProgress(jobId, progress) {
  try {
    sessionStorage.setItem(storageKey(jobId), JSON.stringify(progress));
  } catch {
    /* storage full or disabled: a reload will replay from the start */
  }
}

export function forgetProgress(jobId) {
  try {
    sessionStorage.removeItem(storageKey(jobId));
  } catch {
    /* storage disabled: there is nothing to forget */
  }
}

// handlers: onText(text), onStatus(data), onProgress(data), onError(data), onDone(data), onConnection(state),
// onRefused({loggedOut}): the server will stream this job to this page no more (retrying cannot help).
export function followJob(jobId, handlers) {
  const progress = loadProgress(jobId);
  let socket = null;
  let finished = false;
  let failures = 0;
  let stopWanted = false;

  if (progress.text) handlers.onText(progress.text);

  const handle = (event) => {
    if (event.seq <= progress.seq) return; // already shown
    progress.seq = event.seq;
    if (event.type === "status") {
      if (event.data.restart) progress.text = "";
      handlers.onStatus?.(event.data);
      if (event.data.restart) handlers.onText(progress.text);
    } else if (event.type === "delta") {
      progress.text += event.data.text;
      handlers.onText(progress.text);
    } else if (event.type === "progress") {
      handlers.onProgress?.(event.data);
    } else if (event.type === "error") {
      handlers.onError?.(event.data);
    } else if (event.type === "done") {
      finished = true;
      forgetProgress(jobId);
      handlers.onDone?.(event.data, progress.text);
      return;
    }
    saveProgress(jobId, progress);
  };

  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${jobId}/?after=${progress.seq}`);
    socket.addEventListener("open", () => {
      // `failures` is reset by the first event, not here: a server that accepts and then closes
      // (Redis unreachable, too many sockets) must see this page wait longer each time.
      handlers.onConnection?.("open");
      if (stopWanted) socket.send(JSON.stringify({ type: "cancel" }));
    });
    socket.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (typeof event.seq !== "number") return;
      failures = 0;
      handle(event);
    });
    socket.addEventListener("close", (close) => {
      if (finished) return;
      if (close.code === 4404 || close.code === 4401) {
        handlers.onRefused?.({ loggedOut: close.code === 4401 });
        return;
      }
      handlers.onConnection?.("lost");
      const delay = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
      failures += 1;
      setTimeout(connect, delay);
    });
  };
  connect();

  return {
    stop() {
      stopWanted = true;
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "cancel" }));
    },
  };
}
