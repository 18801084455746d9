// The settings form: filled from the URL, read into a DemoConfig, locked while a search exists.

const INTEGER_FIELDS = ['layers', 'channels', 'batch_size', 'image_size', 'train_images', 'steps', 'epochs', 'steps_per_epoch', 'order', 'seed'];
const FLOAT_FIELDS = ['lr', 'arch_lr'];

export class Controls {
  constructor(form) {
    this.form = form;
    form.addEventListener('change', () => this.showAlgorithmFields());
  }

  get algorithm() {
    return this.form.elements.algorithm.value;
  }

  /** Sets every field named in `params` (a URLSearchParams): DemoConfig keys, `steps`, `ops=a,b`. */
  fill(params) {
    for (const [key, value] of params) {
      if (key === 'ops') {
        const ops = new Set(value.split(','));
        for (const box of this.form.querySelectorAll('input[name=ops]')) box.checked = ops.has(box.value);
      } else if (this.form.elements[key]) {
        const field = this.form.elements[key];
        const before = field.value;
        field.value = value;
        // A value the field cannot hold (an unknown algorithm, image size, or not a number)
        // would leave it empty: keep the default instead.
        if (field.value !== value) {
          console.warn(`URL parameter ${key}=${value} ignored`);
          field.value = before;
        }
      }
    }
    this.showAlgorithmFields();
  }

  /** DARTS (and GDAS, on the same supernet) and ENAS differ in a few fields and views: the page shows those of the chosen one. */
  showAlgorithmFields() {
    document.body.dataset.algorithm = this.algorithm;
  }

  /**
   * The DemoConfig to create the search with, and the steps to run: DARTS and GDAS run `steps` steps
   * (as many epochs as that takes), ENAS `epochs` epochs. Throws on an empty operation set.
   */
  read() {
    const f = this.form.elements;
    const config = { algorithm: this.algorithm };
    for (const key of INTEGER_FIELDS) config[key] = parseInt(f[key].value, 10);
    for (const key of FLOAT_FIELDS) config[key] = parseFloat(f[key].value);
    config.ops = [...this.form.querySelectorAll('input[name=ops]:checked')].map((box) => box.value);
    const bad = Object.entries(config).find(([, v]) => typeof v === 'number' && !Number.isFinite(v));
    if (bad) throw new Error(`"${bad[0]}" is not a number`);
    const steps = config.steps;
    delete config.steps;
    if (config.algorithm !== 'enas') {
      if (config.ops.length === 0) throw new Error('choose at least one operation');
      // GDAS is first order only (its field is hidden).
      if (config.algorithm === 'gdas') config.order = 1;
      config.epochs = Math.ceil(steps / config.steps_per_epoch);
      return { config, target: { steps } };
    }
    delete config.ops;
    return { config, target: { epochs: config.epochs } };
  }

  /** Settings are fixed once a search is created; Reset unlocks them. */
  lock(locked) {
    for (const el of this.form.elements) el.disabled = locked;
  }
}
