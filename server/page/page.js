/**
 * The page's entry: the runs table (polled), selecting a run (its curves follow), starting and cancelling runs,
 * and the token; the curves live in curves.js, prediction in viewer.js.
 */
import { $, api, fmt, say, state } from "/common.js";
import { follow } from "/curves.js";
import "/viewer.js";

function renderRuns() {
  const body = $("runs").tBodies[0];
  body.replaceChildren(
    ...state.runs.slice().reverse().map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      tr.classList.toggle("selected", r.id === state.selected);
      const cells = [
        r.id,
        r.status,
        `${r.epoch}/${r.epochs ?? "?"}`,
        fmt(r.last_step?.loss, 4),
        r.best ? `${fmt(r.best.dice)} (epoch ${r.best.epoch})` : "–",
        fmt(r.test?.avg),
      ];
      for (const [i, text] of cells.entries()) {
        const td = document.createElement("td");
        td.textContent = text;
        if (i === 1) td.className = `status-${r.status}`;
        tr.append(td);
      }
      tr.onclick = () => select(r.id);
      return tr;
    }),
  );
  const sel = state.runs.find((r) => r.id === state.selected);
  $("cancel-btn").hidden = sel?.status !== "training";
}

async function refreshRuns() {
  try {
    state.runs = await (await api("/api/runs")).json();
    renderRuns();
    if (!state.selected && state.runs.length) select(state.runs.at(-1).id);
  } catch (err) {
    say("run-status", err.message, true);
  }
}

function select(id) {
  if (state.selected === id) return;
  state.selected = id;
  $("run-title").textContent = id;
  say("run-status", "");
  renderRuns();
  follow(id);
}

$("start-btn").onclick = async () => {
  try {
    const res = await api("/api/runs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: $("start-config").value,
    });
    const run = await res.json();
    say("start-msg", `started ${run.id}`);
    await refreshRuns();
    select(run.id);
  } catch (err) {
    say("start-msg", err.message, true);
  }
};

$("cancel-btn").onclick = async () => {
  try {
    await api(`/api/runs/${encodeURIComponent(state.selected)}/cancel`, { method: "POST" });
    say("run-status", "cancelling: the run stops after its current step");
  } catch (err) {
    say("run-status", err.message, true);
  }
};

$("token-form").onsubmit = (e) => {
  e.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("token", state.token);
  $("token-form").hidden = true;
  const id = state.selected;
  state.selected = null;
  refreshRuns().then(() => id && select(id));
};

const health = await (await fetch("/api/health")).json();
$("health").textContent = `engine: ${health.backend}${health.adapter ? ` (${health.adapter})` : ""}`;
if (health.auth && !state.token) $("token-form").hidden = false;
await refreshRuns();
setInterval(refreshRuns, 2000);
