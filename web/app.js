// The page's driver: WebGPU check, settings, the search loop (a few steps per call to WebSearch.run,
// a frame between calls), status, errors, downloads, and the #result record the tests read.

import { Controls } from './controls.js';
import { Dashboard, clearViews } from './views.js';

const $ = (id) => document.getElementById(id);

/** Aim for calls to run() of about this long (seconds), so that the page redraws often. */
const CALL_SECONDS = 0.25;
const MAX_STEPS_PER_CALL = 8;

const controls = new Controls($('settings'));
let wasm = null; // the wasm-bindgen module, once loaded
let search = null; // the WebSearch
let current = null; // {info, target, snapshots, calls: [{steps, seconds}] of run(), dashboard}
let stopRequest = null; // 'pause' | 'reset' while the loop should stop after its current call
let adapterName = ''; // as the browser names it

/** What to do next, by status: the line under the buttons. */
const HINTS = {
  idle: 'Pick the settings and press Start.',
  loading: 'Building the search on the GPU…',
  running: 'Pause keeps the search; Reset discards it.',
  paused: 'Resume continues where it stopped; Reset discards the search.',
  done: 'Finished: download the genotype, or Reset to change the settings and search again.',
  error: 'Reset to change the settings and start again.',
};
/** The hint while the loop waits for the call to run() in flight. */
const STOPPING = { pause: 'Pausing when the step in progress ends…', reset: 'Resetting when the step in progress ends…' };

function setStatus(status) {
  const el = $('status');
  el.textContent = status;
  el.className = `status ${status}`;
  $('hint').textContent = stopRequest ? STOPPING[stopRequest] : HINTS[status];
  updateButtons(status);
}

function updateButtons(status) {
  const has = Boolean(lastSnapshot()?.genotype);
  $('start').disabled = !['idle', 'paused'].includes(status);
  $('start').textContent = status === 'paused' ? 'Resume' : 'Start';
  $('pause').disabled = status !== 'running' || stopRequest !== null;
  $('reset').disabled = !['running', 'paused', 'done', 'error'].includes(status) || stopRequest === 'reset';
  $('dl-json').disabled = !has;
  $('dl-python').disabled = !has;
  // WebSearch.alpha_history() refuses while run() is in flight.
  $('dl-alphas').disabled = !has || current.info.algorithm === 'enas' || status === 'running';
}

function status() {
  return $('status').textContent;
}

function showError(error) {
  console.error(error);
  $('error').textContent = error instanceof Error ? error.message : String(error);
  $('error').hidden = false;
}

function hideError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

/** Stops on an error, shown unless another banner explains it already (`show: false`). */
function fail(error, { show = true } = {}) {
  stopRequest = null;
  showError(error);
  $('error').hidden = !show;
  setStatus('error');
}

/**
 * What the browser says about its WebGPU adapter: `problem` says why the search cannot run
 * (null when it can), `adapter` names the adapter (wgpu's WebGPU backend sees no name).
 */
async function probeWebGPU() {
  if (!navigator.gpu) {
    const problem = window.isSecureContext
      ? 'navigator.gpu is missing: this browser has no WebGPU, or it is switched off.'
      : 'navigator.gpu is missing: the page is not in a secure context (serve it over https or from localhost).';
    return { problem, adapter: '' };
  }
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) {
      return {
        problem: 'navigator.gpu.requestAdapter() returned no adapter: WebGPU is present but disabled or blocklisted for this GPU.',
        adapter: '',
      };
    }
    const info = adapter.info ?? {};
    const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
    return { problem: null, adapter: name };
  } catch (e) {
    return { problem: `navigator.gpu.requestAdapter() failed: ${e.message}`, adapter: '' };
  }
}

async function loadWasm() {
  if (wasm) return wasm;
  let module;
  try {
    module = await import('./pkg/wgpu_nas.js');
  } catch (e) {
    throw new Error(`could not load pkg/wgpu_nas.js (${e.message}); build it with web/build.sh`);
  }
  await module.default();
  wasm = module;
  return wasm;
}

async function start() {
  if (status() === 'paused') return loop();
  hideError();
  try {
    const settings = controls.read();
    controls.lock(true);
    setStatus('loading');
    const { WebSearch } = await loadWasm();
    search = await WebSearch.create(JSON.stringify(settings.config));
    const info = JSON.parse(search.info());
    current = { info, target: settings.target, snapshots: [], calls: [], dashboard: new Dashboard(info, adapterName) };
    // Step 0: the initial alphas and the cell they derive, before any training.
    record(JSON.parse(await search.run(0)));
  } catch (e) {
    // No search to pause or reset (a setting it refused, no wasm, no device): back to the
    // unlocked form with the reason, so that Start can be pressed again.
    discard();
    return showError(e);
  }
  await loop();
}

/** What is left to run after `snapshot`: DARTS counts steps, ENAS (whose run(n) runs n shared-weight steps or
 * controller updates) epochs. */
function remaining(snapshot) {
  const { target } = current;
  return target.steps !== undefined ? target.steps - snapshot.step : target.epochs - snapshot.epoch;
}

function nextFrame() {
  // A frame to redraw in; the timeout keeps a hidden tab (no frames) searching.
  return new Promise((resolve) => {
    requestAnimationFrame(resolve);
    setTimeout(resolve, 100);
  });
}

async function loop() {
  setStatus('running');
  let perCall = 1;
  for (;;) {
    const last = current.snapshots.at(-1);
    if (stopRequest || last.finished || remaining(last) <= 0) break;
    const n = Math.min(perCall, remaining(last));
    const t0 = performance.now();
    let snapshot;
    try {
      snapshot = JSON.parse(await search.run(n));
    } catch (e) {
      return fail(e);
    }
    const seconds = (performance.now() - t0) / 1000;
    const steps = snapshot.step - last.step;
    current.calls.push({ steps, seconds });
    record(snapshot);
    if (current.info.algorithm !== 'enas' && steps > 0) {
      perCall = Math.max(1, Math.min(MAX_STEPS_PER_CALL, Math.floor((CALL_SECONDS * steps) / seconds)));
    }
    await nextFrame();
  }
  if (stopRequest === 'reset') return discard();
  if (stopRequest === 'pause') {
    stopRequest = null;
    return setStatus('paused');
  }
  finish();
}

/** Steps per second over all calls of run() so far, and over the last one. */
function speed() {
  const { calls } = current;
  const sum = (key) => calls.reduce((total, call) => total + call[key], 0);
  const last = calls.at(-1);
  return { overall: calls.length ? sum('steps') / sum('seconds') : 0, last: last ? last.steps / last.seconds : 0 };
}

/** ENAS: seconds per epoch so far (an epoch holds shared-weight steps and controller updates). */
function enasSpeed(snapshot, stepsPerSecond) {
  const seconds = current.calls.reduce((total, call) => total + call.seconds, 0);
  const perEpoch = snapshot.epoch ? `${(seconds / snapshot.epoch).toFixed(1)} s per epoch` : `${seconds.toFixed(0)} s into epoch 1`;
  return `${perEpoch} (${stepsPerSecond.toFixed(2)} shared-weight steps/s)`;
}

function lastSnapshot() {
  return current?.snapshots.at(-1);
}

function record(snapshot) {
  current.snapshots.push(snapshot);
  current.dashboard.add(snapshot);
  const { target, info } = current;
  const total = target.steps ?? target.epochs * info.config.steps_per_epoch;
  $('stat-step').textContent = `${snapshot.step} / ${total}`;
  $('stat-epoch').textContent = `${snapshot.epoch} / ${info.config.epochs} finished`;
  const { overall, last } = speed();
  if (current.calls.length === 0) $('stat-speed').textContent = '–';
  else if (info.algorithm !== 'enas') $('stat-speed').textContent = `${overall.toFixed(2)} steps/s (last call: ${last.toFixed(2)})`;
  else $('stat-speed').textContent = enasSpeed(snapshot, overall);
  const gpu = snapshot.gpu;
  $('stat-gpu').textContent = `${gpu.dispatches.toLocaleString()} dispatches, ${gpu.submissions.toLocaleString()} submissions, ${gpu.readbacks.toLocaleString()} readbacks`;
  updateButtons(status());
}

function alphaHistory() {
  return current.info.algorithm !== 'enas' ? JSON.parse(search.alpha_history()) : [];
}

function finish() {
  const { info, snapshots } = current;
  $('result').textContent = JSON.stringify({
    info,
    snapshots,
    alphas_initial: snapshots[0].alphas,
    genotype: snapshots.at(-1)?.genotype ?? null,
    steps_per_sec: speed().overall,
    calls: current.calls,
    alpha_history: alphaHistory(),
  });
  setStatus('done');
}

/** Reset: at once, or, while run() is in flight, by the loop once the call returns. */
function reset() {
  if (status() === 'running') {
    stopRequest = 'reset';
    setStatus('running');
    return;
  }
  discard();
}

/** Frees the search, empties the views and unlocks the settings. */
function discard() {
  stopRequest = null;
  try {
    search?.free();
  } catch (e) {
    console.warn('freeing the search failed', e);
  }
  search = null;
  current = null;
  clearViews();
  $('result').textContent = '';
  hideError();
  controls.lock(false);
  setStatus('idle');
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}


$('start').addEventListener('click', start);
$('pause').addEventListener('click', () => {
  stopRequest ??= 'pause';
  setStatus(status());
});
$('reset').addEventListener('click', reset);
$('dl-json').addEventListener('click', () =>
  download('genotype.json', JSON.stringify(lastSnapshot().genotype, null, 2), 'application/json'),
);
$('dl-python').addEventListener('click', () => download('genotype.py', `${lastSnapshot().genotype_python}\n`, 'text/x-python'));
$('dl-alphas').addEventListener('click', () =>
  download('alpha_history.json', JSON.stringify(alphaHistory()), 'application/json'),
);
window.addEventListener('unhandledrejection', (event) => fail(event.reason));

const params = new URLSearchParams(location.search);
controls.fill(params);
setStatus('idle');
const { problem, adapter } = await probeWebGPU();
adapterName = adapter;
if (problem) {
  $('webgpu-reason').textContent = problem;
  $('webgpu-missing').hidden = false;
  fail(new Error(`WebGPU is not available: ${problem}`), { show: false });
  // Nothing to reset: the page cannot search in this browser.
  $('reset').disabled = true;
  $('hint').textContent = 'WebGPU is missing: see the message above.';
} else if (params.get('autostart') === '1') {
  start();
}
