// The ops dashboard: polls the stats endpoint every two seconds and redraws the figures in place.
const POLL_MS = 2000;
const root = document.getElementById("dashboard");
const statsUrl = root.dataset.statsUrl;

const text = (id, value) => {
  document.getElementById(id).textContent = value;
};
const fixed = (value, digits = 2) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));

// `empty`: what the table says when there is nothing to list, rather than showing bare headers.
function rows(id, items, cells, empty) {
  const body = document.getElementById(id);
  if (!items.length && empty) {
    const td = document.createElement("td");
    td.className = "empty";
    td.colSpan = body.closest("table").querySelectorAll("thead th").length;
    td.textContent = empty;
    const tr = document.createElement("tr");
    tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(
    ...items.map((item) => {
      const tr = document.createElement("tr");
      for (const value of cells(item)) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.append(td);
      }
      return tr;
    }),
  );
}

function bars(id, series, key, errorKey) {
  const svg = document.getElementById(id);
  const max = Math.max(1, ...series.map((point) => point[key]));
  const width = 600 / series.length;
  const ns = "http://www.w3.org/2000/svg";
  const shapes = [];
  series.forEach((point, index) => {
    const height = (point[key] / max) * 115;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", index * width + 1);
    rect.setAttribute("y", 120 - height);
    rect.setAttribute("width", Math.max(1, width - 2));
    rect.setAttribute("height", height);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${point.minute}: ${point[key]}`;
    rect.append(title);
    shapes.push(rect);
    if (errorKey && point[errorKey]) {
      const errorHeight = (point[errorKey] / max) * 115;
      const errors = rect.cloneNode(false);
      errors.setAttribute("class", "errors");
      errors.setAttribute("y", 120 - errorHeight);
      errors.setAttribute("height", errorHeight);
      shapes.push(errors);
    }
  });
  svg.replaceChildren(...shapes);
}

function render(stats) {
  const sum = (key) => stats.queues.reduce((total, queue) => total + queue[key], 0);
  text("total-queued", sum("queued"));
  text("total-running", sum("running"));
  text("workers-online", stats.workers.length);
  text("jobs-last-minute", stats.throughput.jobs_last_minute);
  text("jobs-per-minute", fixed(stats.throughput.jobs_per_minute_last_hour));
  text("tokens-per-second", fixed(stats.throughput.tokens_per_second_last_minute, 1));
  text("error-rate", `${fixed(stats.errors.rate * 100, 1)}%`);
  rows(
    "queues",
    stats.queues,
    (q) => [q.name, q.queued, q.running, q.broker_depth ?? "?", q.workers],
    "No queues yet.",
  );
  rows(
    "workers",
    stats.workers,
    (w) => [
      w.hostname,
      w.queues.join(", "),
      w.models.join(", "),
      w.loading?.length ? `loading ${w.loading.join(", ")}` : "ready",
    ],
    "No worker is online: queued jobs wait until one starts.",
  );
  rows("latency", Object.entries(stats.latency), ([name, p]) => [
    { queue_wait: "Queue wait", ttft: "Time to first token", total: "Total" }[name] ?? name,
    fixed(p.p50, 3),
    fixed(p.p90, 3),
    fixed(p.p99, 3),
    p.count,
  ]);
  rows("errors", Object.entries(stats.errors.by_code), ([code, count]) => [code, count], "No failed jobs.");
  rows("top-users", stats.top_users, (u) => [u.name, u.jobs, u.tokens], "No jobs in the last hour.");
  rows("top-models", stats.top_models, (m) => [m.name, m.jobs, m.tokens], "No jobs in the last hour.");
  bars("chart-jobs", stats.series, "jobs", "errors");
  bars("chart-tokens", stats.series, "tokens");
}

async function poll() {
  const updated = document.getElementById("updated");
  try {
    const response = await fetch(statsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
    updated.dataset.state = "ok";
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    updated.dataset.state = "error";
    updated.textContent = `cannot update: ${error.message}`;
  }
  setTimeout(poll, POLL_MS);
}

poll();
