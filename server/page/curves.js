/**
 * The selected run's loss per step and validation Dice per epoch (uPlot), fed by its Server-Sent Events
 * (fetch-based, so the bearer token travels in a header), reconnecting with Last-Event-ID until the run ends.
 */
import uPlot from "/vendor/uplot.js";
import { fetchEventSource } from "/vendor/fetch-event-source/index.js";
import { $, authHeaders, CLASSES, fmt, say, state, Stop } from "/common.js";

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
export function follow(id) {
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
