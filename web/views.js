// Everything the page shows about a search, rebuilt from what the snapshots have brought so far.

import { AlphaGrid } from './alphas.js';
import { cellDiagram } from './cell.js';
import { LineChart } from './charts.js';
import { renderLegend } from './ops.js';
import { html } from './svg.js';

const $ = (id) => document.getElementById(id);

const TRAIN = '#4e79a7';
const VALID = '#f28e2b';
const BASELINE = '#9aa0a6';

export class Dashboard {
  /**
   * Builds the views for the search `info` describes (the JSON of WebSearch.info());
   * `adapterName` is the browser's name for the adapter.
   */
  constructor(info, adapterName) {
    // DARTS and GDAS share the supernet views (alphas, derived cell).
    this.darts = info.algorithm !== 'enas';
    this.metrics = [];
    this.updates = [];
    this.alphas = [];

    const derived = this.darts
      ? 'Derived cell now (the two strongest edges of each node)'
      : 'Best architecture of the latest controller update';
    for (const cell of ['normal', 'reduce']) {
      $(`derived-${cell}-title`).textContent = derived;
      // ENAS has no cell to show before its first controller update, at the end of epoch 1.
      if (!this.darts) $(`cell-${cell}`).textContent = 'appears after the first epoch';
    }
    renderLegend($('legend'), info.ops);
    const curves = $('curves');
    curves.replaceChildren();
    this.loss = new LineChart(curves, { title: 'Loss (cross-entropy)' });
    this.accuracy = new LineChart(curves, { title: 'Accuracy' });
    if (this.darts) {
      this.grids = ['normal', 'reduce'].map((cell) => {
        $(`alphas-${cell}`).replaceChildren();
        return new AlphaGrid($(`alphas-${cell}`), info.steps, info.ops);
      });
    } else {
      $('enas-charts').replaceChildren();
      this.reward = new LineChart($('enas-charts'), { title: 'Reward per controller update', xLabel: 'update' });
      this.entropy = new LineChart($('enas-charts'), { title: 'Controller entropy (summed over its decisions)', xLabel: 'update' });
    }
    const a = info.adapter;
    const software = a.device_type === 'Cpu' ? '; a CPU fallback, expect seconds per step (7×7 images and 2 channels help)' : '';
    $('stat-adapter').textContent = `${adapterName || a.name} (${a.backend}, ${a.device_type}${software})`;
    $('stat-net').textContent = `${info.config.layers} cells, ${info.config.channels} channels, ${info.params.toLocaleString()} parameters`;
    const [c, h, w] = info.data.image;
    const name = info.data.name.includes('fashion-mnist') ? 'Fashion-MNIST' : info.data.name;
    const split = this.darts ? 'weights + α' : 'weights + controller';
    $('stat-data').textContent = `${name}, ${info.data.train} + ${info.data.valid} images (${split}), ${c}×${h}×${w}`;
  }

  /** Adds a snapshot (the JSON of WebSearch.run()) and redraws. */
  add(snapshot) {
    this.metrics.push(...snapshot.metrics);
    if (snapshot.alphas) this.alphas.push({ step: snapshot.step, ...snapshot.alphas });
    if (snapshot.enas) this.updates.push(...snapshot.enas.updates);

    const g = snapshot.genotype;
    if (g) {
      $('cell-normal').replaceChildren(cellDiagram(g.normal, g.normal_concat));
      $('cell-reduce').replaceChildren(cellDiagram(g.reduce, g.reduce_concat));
      for (const id of ['cell-normal', 'cell-reduce']) $(id).classList.remove('placeholder');
    }

    // Steps are numbered from 1 on every chart: a metric's `step` is the index of the step that
    // measured it, a snapshot's the number of steps done.
    const points = (key) => this.metrics.filter((m) => m[key] !== undefined).map((m) => [m.step + 1, m[key]]);
    const curve = (name, key, color) => ({ name, color, points: points(key) });
    if (this.darts) {
      this.loss.update([curve('train', 'train_loss', TRAIN), curve('validation', 'val_loss', VALID)]);
      this.accuracy.update([curve('train', 'train_acc', TRAIN), curve('validation', 'val_acc', VALID)], [0, 1]);
      this.grids[0].update(this.alphas.map((a) => ({ step: a.step, probs: a.normal })), g?.normal ?? []);
      this.grids[1].update(this.alphas.map((a) => ({ step: a.step, probs: a.reduce })), g?.reduce ?? []);
    } else {
      this.loss.update([curve('train', 'train_loss', TRAIN)]);
      this.accuracy.update([curve('train', 'train_acc', TRAIN)], [0, 1]);
      const byUpdate = (key) => this.updates.map((u) => [u.update, u[key]]);
      this.reward.update([
        { name: 'reward', color: VALID, points: byUpdate('reward') },
        { name: 'baseline', color: BASELINE, points: byUpdate('baseline'), dash: '5 3' },
      ]);
      this.entropy.update([{ name: 'entropy', color: TRAIN, points: byUpdate('entropy') }]);
      this.showRecent(snapshot.enas.recent);
    }
  }

  showRecent(recent) {
    $('enas-recent').replaceChildren(
      ...recent.map(({ genotype: g, reward }) =>
        html('figure', { class: 'sampled' }, [
          // serde_json writes a NaN reward as null.
          html('figcaption', { text: `reward ${reward?.toFixed(3) ?? 'not a number'}` }),
          cellDiagram(g.normal, g.normal_concat, { labels: false, width: 210 }),
          cellDiagram(g.reduce, g.reduce_concat, { labels: false, width: 210 }),
        ]),
      ),
    );
  }
}

/** Empties every view (Reset). */
export function clearViews() {
  for (const id of ['curves', 'enas-charts', 'enas-recent', 'alphas-normal', 'alphas-reduce', 'legend']) $(id).replaceChildren();
  for (const cell of ['normal', 'reduce']) {
    $(`cell-${cell}`).textContent = 'appears with the first step';
    $(`cell-${cell}`).classList.add('placeholder');
    $(`derived-${cell}-title`).textContent = 'Derived cell now';
  }
  for (const id of ['stat-step', 'stat-epoch', 'stat-speed', 'stat-adapter', 'stat-net', 'stat-data', 'stat-gpu']) $(id).textContent = '–';
}
