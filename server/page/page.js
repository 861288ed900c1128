/**
 * The page's script: the runs table (polled), live loss and validation-Dice curves of the selected run from
 * its Server-Sent Events (fetch-based, so the bearer token can travel in a header), starting and cancelling
 * runs, and prediction on a dropped NIfTI scan shown slice by slice with the labels overlaid.
 */
import uPlot from "/vendor/uplot.js";
import { fetchEventSource } from "/vendor/fetch-event-source/index.js";

const $ = (id) => document.getElementById(id);
/** The overlay colours of stages/preview.ts (RV, Myo, LV), and grey for the mean. */
const CLASSES = [["RV", "rgb(230,60,60)"], ["Myo", "rgb(60,200,80)"], ["LV", "rgb(70,130,255)"]];
const state = {
  token: sessionStorage.getItem("token") ?? "",
  runs: [],
  selected: null,
  stream: null,
  scan: null,
};

class Stop extends Error {}

const authHeaders = () => (state.token ? { Authorization: `Bearer ${state.token}` } : {});

/** fetch with the token; a 401 asks for the token; other error answers throw their JSON detail. */
async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers ?? {}) } });
  if (res.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this server needs a token (enter it above)");
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(`${res.status} ${body.error ?? res.statusText}: ${body.detail ?? ""}`);
  }
  return res;
}

function say(id, text, error = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", error);
}

const fmt = (x, d = 3) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : "–");

// ---- curves ----
const lossData = [[], []];
const diceData = [[], [], [], [], []];
/** Whole-number ticks on the x axis (steps and epochs). */
const axes = (
  x,
) => [{ label: x, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }, { size: 48 }];
const lossPlot = new uPlot(
  {
    width: 460,
    height: 220,
    legend: { live: false },
    scales: { x: { time: false } },
    axes: axes("step"),
    series: [{}, { label: "loss", stroke: "#1d2330", width: 1.5 }],
  },
  lossData,
  $("loss-chart"),
);
const dicePlot = new uPlot(
  {
    width: 460,
    height: 220,
    legend: { live: false },
    scales: { x: { time: false }, y: { range: [0, 1] } },
    axes: axes("epoch"),
    series: [
      {},
      ...CLASSES.map(([label, stroke]) => ({ label, stroke, width: 1.5, points: { show: true } })),
      { label: "avg", stroke: "#777", width: 2, dash: [4, 3], points: { show: true } },
    ],
  },
  diceData,
  $("dice-chart"),
);

function redraw() {
  lossPlot.setData(lossData);
  dicePlot.setData(diceData);
  $("loss-chart").dataset.points = String(lossData[0].length);
  $("dice-chart").dataset.points = String(diceData[0].length);
}

function onEvent(ev) {
  const d = JSON.parse(ev.data);
  if (ev.event === "progress") {
    lossData[0].push(d.global_step);
    lossData[1].push(d.loss);
    const eta = d.eta_s === null ? "" : `, about ${Math.round(d.eta_s)} s left`;
    say(
      "run-status",
      `epoch ${d.epoch}/${d.epochs} step ${d.step}/${d.steps ?? "?"}, loss ${fmt(d.loss, 4)}${eta}`,
    );
  } else if (ev.event === "validation") {
    diceData[0].push(d.epoch);
    CLASSES.forEach(([name], i) => diceData[i + 1].push(d.dice[name]));
    diceData[4].push(d.dice.avg);
  } else if (ev.event === "done") {
    say("run-status", `${d.status} after epoch ${d.epoch}${d.test ? `; test Dice ${fmt(d.test.avg)}` : ""}`);
  } else if (ev.event === "error") {
    say("run-status", `failed: ${d.detail}`, true);
  }
  redraw();
}

/** Follows the selected run's events; reconnects (with Last-Event-ID) until the run ends. */
function follow(id) {
  state.stream?.abort();
  for (const a of [...lossData, ...diceData]) a.length = 0;
  redraw();
  const ctrl = new AbortController();
  state.stream = ctrl;
  fetchEventSource(`/api/runs/${encodeURIComponent(id)}/events`, {
    headers: authHeaders(),
    signal: ctrl.signal,
    openWhenHidden: true,
    onopen: (res) => {
      if (res.status === 204) throw new Stop(); // a finished run we have every event of
      if (res.status === 401) $("token-form").hidden = false;
      if (!res.ok) throw new Stop(`${res.status}`);
    },
    onmessage: (ev) => {
      onEvent(ev);
      if (ev.event === "done" || ev.event === "error") ctrl.abort();
    },
    onerror: (err) => {
      if (err instanceof Stop) throw err;
      return 2000; // retry in 2 s
    },
  }).catch(() => {});
}

// ---- runs ----
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

// ---- prediction ----
function predictUrl(query) {
  const w = $("weights").value;
  return `/api/runs/${encodeURIComponent(state.selected)}/predict?weights=${w}&${query}`;
}

const post = (query) =>
  api(predictUrl(query), {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: state.scan.bytes,
  });

async function showSlice(k) {
  const blob = await (await post(`format=png&slice=${k}`)).blob();
  const img = $("overlay");
  URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  await img.decode();
  img.dataset.slice = String(k);
  $("slice").value = String(k);
  $("slice-label").textContent = `slice ${k + 1} of ${state.scan.slices}`;
}

async function predictFile(file) {
  if (!state.selected) return say("predict-msg", "select a trained run first", true);
  say("predict-msg", `predicting ${file.name} with ${state.selected}…`);
  try {
    state.scan = { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()), slices: 0 };
    const info = await (await post("format=json")).json();
    state.scan.slices = info.slices;
    $("volumes").replaceChildren(...CLASSES.map(([name, colour]) => {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td><span class="swatch" style="background:${colour}"></span>${name}</td><td></td>`;
      tr.cells[1].textContent = `${fmt(info.volumes_ml[name], 1)} mL`;
      return tr;
    }));
    $("slice").max = String(info.slices - 1);
    $("viewer").hidden = false;
    await showSlice(Math.floor(info.slices / 2));
    say(
      "predict-msg",
      `${file.name}: ${info.dims.join(" × ")} voxels, ${fmt(info.voxel_ml * 1000, 2)} mm³ each`,
    );
  } catch (err) {
    say("predict-msg", err.message, true);
  }
}

const step = (d) => {
  const k = Number($("slice").value) + d;
  if (state.scan && k >= 0 && k < state.scan.slices) {
    showSlice(k).catch((e) => say("predict-msg", e.message, true));
  }
};
$("prev").onclick = () => step(-1);
$("next").onclick = () => step(1);
$("slice").oninput = () => step(0);
$("file").onchange = () => $("file").files[0] && predictFile($("file").files[0]);
$("drop").ondragover = (e) => (e.preventDefault(), $("drop").classList.add("over"));
$("drop").ondragleave = () => $("drop").classList.remove("over");
$("drop").ondrop = (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  if (e.dataTransfer.files[0]) predictFile(e.dataTransfer.files[0]);
};
$("download").onclick = async () => {
  try {
    const blob = await (await post("format=nifti")).blob();
    const a = Object.assign(document.createElement("a"), {
      href: URL.createObjectURL(blob),
      download: state.scan.name.replace(/\.nii(\.gz)?$/, "") + "_labels.nii" +
        (blob.type.includes("gzip") ? ".gz" : ""),
    });
    a.click();
    URL.revokeObjectURL(a.href);
  } catch (err) {
    say("predict-msg", err.message, true);
  }
};

// ---- token and start-up ----
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
