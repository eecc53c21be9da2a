// The live dashboard `--metrics-addr` serves at `/`: one self-contained HTML page
// (no external scripts, styles or fonts; the page talks only to the server it came
// from) that starts from /api/history (the server's samples of the last five
// minutes), asks /api/status every second (`?every=MS` to change it) and draws on
// canvases: records per second through each stage, the chunks queued before each
// stage, failures by reason, bytes downloaded per second, batches and records in
// flight, and the run's progress and ETA.
//
// For tests (and anyone scripting it), the page keeps on <body>: data-samples (how
// many answers it has drawn), data-errors (script errors, failed fetches and
// console.error calls), and on each canvas data-points (the points it drew).
#ifndef SLUICE_CLI_DASHBOARD_PAGE_H_
#define SLUICE_CLI_DASHBOARD_PAGE_H_

namespace sluice::cli {

inline constexpr const char* kDashboardPage = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sluice</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 16px; background: #fafafa; color: #222; }
  h1 { font-size: 18px; margin: 0 0 4px; }
  #summary { margin: 0 0 12px; color: #444; }
  #bar { height: 10px; background: #ddd; border-radius: 5px; overflow: hidden; margin: 6px 0 14px; }
  #bar div { height: 100%; background: #2b7bb9; width: 0; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 10px; }
  .card h2 { font-size: 14px; margin: 0 0 4px; font-weight: 600; }
  canvas { width: 100%; height: 220px; display: block; }
  #error { color: #b00; }
</style>
</head>
<body data-samples="0" data-errors="0">
<h1 id="title">sluice</h1>
<div id="summary">waiting for the first sample...</div>
<div id="bar"><div></div></div>
<div id="error"></div>
<div class="grid">
  <div class="card"><h2>records per second, by stage</h2><canvas id="throughput"></canvas></div>
  <div class="card"><h2>chunks queued before each stage (backlog)</h2><canvas id="backlog"></canvas></div>
  <div class="card"><h2>failures by reason (items committed)</h2><canvas id="failures"></canvas></div>
  <div class="card"><h2>bytes downloaded per second</h2><canvas id="bytes"></canvas></div>
  <div class="card"><h2>batches and records in flight</h2><canvas id="inflight"></canvas></div>
  <div class="card"><h2>items done (committed, all groups' last)</h2><canvas id="progress"></canvas></div>
</div>
<script>
"use strict";
const params = new URLSearchParams(location.search);
const every = Math.max(100, Number(params.get("every")) || 1000);
const keep = 300;  // samples kept (5 minutes at one a second)
const samples = [];
let errors = 0;
function countError(what) {
  errors++;
  document.body.dataset.errors = String(errors);
  document.getElementById("error").textContent = String(what);
}
window.addEventListener("error", e => countError(e.message));
window.addEventListener("unhandledrejection", e => countError(e.reason));
const consoleError = console.error.bind(console);
console.error = (...args) => { countError(args.join(" ")); consoleError(...args); };

const colors = ["#2b7bb9", "#d9534f", "#5cb85c", "#f0ad4e", "#8e44ad", "#16a085",
                "#7f8c8d", "#c0392b", "#2c3e50", "#d35400"];
function thousands(x) { return Math.round(x).toLocaleString("en-US"); }
function eta(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d" + String(Math.floor(s % 86400 / 3600)).padStart(2, "0") + "h";
}

// A line chart of `series` ({name: [[t, y], ...]}), time on x.
function lineChart(id, series) {
  const canvas = document.getElementById(id);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 560, height = canvas.clientHeight || 220;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const names = Object.keys(series);
  let points = 0, tMin = Infinity, tMax = -Infinity, yMax = 0;
  for (const name of names) for (const [t, y] of series[name]) {
    tMin = Math.min(tMin, t); tMax = Math.max(tMax, t); yMax = Math.max(yMax, y);
  }
  const left = 56, right = 8, top = 8, bottom = 22 + 16 * Math.ceil(names.length / 3);
  const w = width - left - right, h = height - top - bottom;
  g.strokeStyle = "#ccc"; g.fillStyle = "#666"; g.font = "11px system-ui, sans-serif";
  g.beginPath(); g.moveTo(left, top); g.lineTo(left, top + h); g.lineTo(left + w, top + h); g.stroke();
  const yTop = yMax > 0 ? yMax * 1.1 : 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + h - h * i / 4;
    const v = yTop * i / 4;
    g.fillText(yTop < 10 ? v.toFixed(1) : thousands(v), 2, y + 4);
  }
  const span = tMax > tMin ? tMax - tMin : 1;
  g.fillText(names.length && isFinite(span) ? Math.round(span) + " s shown" : "", left + w - 70, top + h + 14);
  names.forEach((name, i) => {
    const data = series[name];
    g.strokeStyle = colors[i % colors.length]; g.lineWidth = 1.5;
    g.beginPath();
    data.forEach(([t, y], k) => {
      const x = left + w * (t - tMin) / span, yy = top + h - h * y / yTop;
      if (k === 0) g.moveTo(x, yy); else g.lineTo(x, yy);
      points++;
    });
    g.stroke();
    const lx = left + (i % 3) * (w / 3), ly = top + h + 30 + 16 * Math.floor(i / 3);
    g.fillStyle = colors[i % colors.length]; g.fillRect(lx, ly - 8, 10, 10);
    g.fillStyle = "#333"; g.fillText(name, lx + 14, ly);
  });
  canvas.dataset.points = String(points);
}

// Horizontal bars of `values` ({name: number}).
function barChart(id, values) {
  const canvas = document.getElementById(id);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 560, height = canvas.clientHeight || 220;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const entries = Object.entries(values).sort((a, b) => b[1] - a[1]).slice(0, 10);
  const max = Math.max(1, ...entries.map(e => e[1]));
  g.font = "12px system-ui, sans-serif";
  if (entries.length === 0) { g.fillStyle = "#666"; g.fillText("no failures", 8, 20); }
  entries.forEach(([name, value], i) => {
    const y = 8 + i * 20;
    g.fillStyle = "#333"; g.fillText(name, 4, y + 12);
    g.fillStyle = colors[(i + 1) % colors.length];
    g.fillRect(130, y, (width - 220) * value / max, 14);
    g.fillStyle = "#333"; g.fillText(thousands(value), 136 + (width - 220) * value / max, y + 12);
  });
  canvas.dataset.points = String(entries.length);
}

function rate(name, pick) {  // per second, from consecutive samples
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i], dt = (b.t - a.t);
    const va = pick(a), vb = pick(b);
    if (dt > 0 && va !== undefined && vb !== undefined) out.push([b.t, Math.max(0, (vb - va) / dt)]);
  }
  return out;
}

function draw() {
  const last = samples[samples.length - 1];
  const stageNames = [];
  for (const group of last.json.groups) for (const stage of group.stages) {
    stageNames.push([group.name, stage.name]);
  }
  const many = last.json.groups.length > 1;
  const label = (g, s) => many ? g + "/" + s : s;
  const find = (sample, g, s) => {
    const group = sample.json.groups.find(x => x.name === g);
    return group && group.stages.find(x => x.name === s);
  };
  const throughput = {}, backlog = {};
  for (const [g, s] of stageNames) {
    throughput[label(g, s)] = rate(s, x => { const st = find(x, g, s); return st && st.records; });
    backlog[label(g, s)] = samples.map(x => { const st = find(x, g, s); return [x.t, st ? st.queued_chunks : 0]; });
  }
  lineChart("throughput", throughput);
  lineChart("backlog", backlog);
  const failures = {};
  for (const group of last.json.groups) if (group === last.json.groups[last.json.groups.length - 1]) {
    for (const [reason, count] of Object.entries(group.store.failures || {})) failures[reason] = count;
  }
  barChart("failures", failures);
  lineChart("bytes", {"bytes/s": rate("bytes", x => x.json.groups.reduce((sum, g) =>
      sum + g.stages.reduce((s2, st) => s2 + (st.bytes || 0), 0), 0))});
  const inflight = {};
  for (const group of last.json.groups) {
    inflight[(many ? group.name + " " : "") + "batches"] = samples.map(x => {
      const gg = x.json.groups.find(y => y.name === group.name); return [x.t, gg ? gg.live.batches_in_flight : 0]; });
    inflight[(many ? group.name + " " : "") + "records"] = samples.map(x => {
      const gg = x.json.groups.find(y => y.name === group.name); return [x.t, gg ? gg.live.records_in_flight : 0]; });
  }
  lineChart("inflight", inflight);
  const done = x => { const g = x.json.groups[x.json.groups.length - 1];
                      return (g.store.results_ok || 0) + (g.store.results_failed || 0) +
                             (g.store.results_filtered || 0); };
  lineChart("progress", {"items done": samples.map(x => [x.t, done(x)])});

  const group = last.json.groups[last.json.groups.length - 1];
  const total = group.store.items || 0, finished = done(last);
  const recent = samples.slice(-30);
  const perSecond = recent.length > 1 ? (done(recent[recent.length - 1]) - done(recent[0])) /
      (recent[recent.length - 1].t - recent[0].t) : 0;
  document.getElementById("title").textContent = "sluice: " + last.json.pipeline;
  document.getElementById("summary").textContent =
      thousands(finished) + " of " + thousands(total) + " items done (" +
      (total ? (100 * finished / total).toFixed(1) : "100.0") + "%), " +
      thousands(perSecond) + " items/s, ETA " + (finished >= total ? "done" : eta((total - finished) / perSecond)) +
      ", " + thousands(group.store.results_failed || 0) + " failed";
  document.querySelector("#bar div").style.width = (total ? 100 * finished / total : 100) + "%";
}

async function sample() {
  try {
    const response = await fetch("api/status", {cache: "no-store"});
    if (!response.ok) throw new Error("api/status: HTTP " + response.status);
    const json = await response.json();
    // The server's clock: the samples of /api/history and these line up.
    if (samples.length === 0 || json.time > samples[samples.length - 1].t) {
      samples.push({t: json.time, json});
    }
    if (samples.length > keep) samples.shift();
    draw();
    document.body.dataset.samples = String(Number(document.body.dataset.samples) + 1);
    document.getElementById("error").textContent = "";
  } catch (e) {
    countError(e);
  }
  setTimeout(sample, every);
}
// What the server saw before this page was opened, then one sample every `every` ms.
fetch("api/history", {cache: "no-store"})
  .then(response => response.ok ? response.json() : {samples: []})
  .then(history => { for (const json of history.samples) samples.push({t: json.time, json}); })
  .catch(countError)
  .finally(sample);
</script>
</body>
</html>
)html";

}  // namespace sluice::cli

#endif  // SLUICE_CLI_DASHBOARD_PAGE_H_
