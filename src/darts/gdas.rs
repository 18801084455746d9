//! GDAS (Dong & Yang, "Searching for a Robust Neural Architecture in Four GPU Hours", CVPR
//! 2019; reference code D-X-Y/AutoDL-Projects): the DARTS supernet, searched by sampling one
//! op per edge. Each forward pass draws Gumbel noise g for every alpha and takes, per edge,
//!
//! ```text
//! p     = softmax((log_softmax(alpha) + g) / tau)       // [E, K], the Gumbel-softmax
//! index = argmax(p)                                      // the sampled op of each edge
//! h     = one_hot(index) - p.detach() + p                // one-hot in value, p's gradient
//! edge  = h[index] * op_index(x) + sum_{i != index} h[i] // only the sampled op runs
//! ```
//!
//! so a forward and backward pass run one candidate op per edge instead of all of them, and the
//! gradient still reaches every alpha of the edge (the other ops' h are zero in value and carry
//! sum(dout) back). The temperature falls linearly from `tau_max` (10) to `tau_min` (0.1) over
//! the epochs. A step updates the weights on a training batch (SGD, as DARTS), then the alphas
//! on a validation batch (Adam, as DARTS's first order), each with its own sample, as the
//! reference's `GDAS.py`; the genotype is derived from the alphas as DARTS derives it. The
//! epoch's validation score is that of the argmax op of every edge (the weights learnt one op at
//! a time, so the softmax-weighted supernet is not what they were trained as); the collapse
//! diagnostics are DARTS's, the Hessian's eigenvalue that of the softmax relaxation's
//! validation loss (the hard sample's loss is flat in the alphas between jumps).
//!
//! Which op to dispatch must be known on the CPU. `argmax((log_softmax(a) + g) / tau)` is
//! `argmax(a + g)` per row (log_softmax shifts a row by a constant, tau > 0 scales it), so a
//! step reads the alphas back once (2 x edges x ops floats, before its first half) and picks
//! the ops from them and its host-side noise. A CPU mirror of the alphas would save that
//! readback but would have to reproduce the GPU's Adam bit for bit, or the op run would drift
//! from the alphas the tape differentiates. The noise comes from the search's own [`Rng`],
//! saved in the checkpoint, so a resumed search draws the same samples.

use serde::{Deserialize, Serialize};

use super::model::{Mixing, Network};
use super::search::{Relaxation, SearchConfig, StepParts, SupernetSearch};
use crate::error::{Error, Result};
use crate::ops::{elementwise, softmax};
use crate::optim::{Adam, Optimizer};
use crate::rng::Rng;
use crate::run_loop::{Recorded, RunLoop};
use crate::tensor::{read_all, Tensor};

/// The GDAS search method: the supernet searched by Gumbel-softmax samples.
pub type Gdas = SupernetSearch<Gumbel>;

/// A GDAS search in progress: [`Gdas`] in the run loop.
pub type GdasSearch = RunLoop<Gdas>;

/// The temperature schedule: tau from `tau_max` at the first epoch down to `tau_min` at the
/// last, linearly (the reference's `tau_max - (tau_max - tau_min) * epoch / (epochs - 1)`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Temperature {
    /// tau at the first epoch (10).
    pub tau_max: f32,
    /// tau at the last epoch (0.1).
    pub tau_min: f32,
}

impl Temperature {
    /// The paper's schedule: 10 down to 0.1.
    pub fn gdas() -> Temperature {
        Temperature { tau_max: 10.0, tau_min: 0.1 }
    }

    /// Both temperatures finite and positive, and falling (or constant).
    pub fn validate(&self) -> Result<()> {
        let (max, min) = (self.tau_max, self.tau_min);
        if !(max > 0.0 && max.is_finite() && min > 0.0 && min.is_finite()) {
            return Err(Error::Config(format!(
                "the Gumbel-softmax temperature must be finite and above 0 (got --tau-max {max}, --tau-min {min}); GDAS uses 10 and 0.1"
            )));
        }
        if min > max {
            return Err(Error::Config(format!(
                "the temperature schedule rises (--tau-min {min} is above --tau-max {max}): it anneals from tau-max down to tau-min"
            )));
        }
        Ok(())
    }

    /// tau during `epoch` (from 0) of `epochs`; a one-epoch search runs at `tau_max`.
    pub fn at(&self, epoch: usize, epochs: usize) -> f32 {
        if epochs <= 1 {
            return self.tau_max;
        }
        let t = epoch.min(epochs - 1) as f64 / (epochs - 1) as f64;
        (self.tau_max as f64 - (self.tau_max - self.tau_min) as f64 * t) as f32
    }
}

/// `n` Gumbel(0, 1) draws: g = -log(E), E = -log(U) ~ Exp(1). A U of 0 (E infinite, g minus
/// infinity: the reference resamples then) is drawn again.
pub fn gumbel_noise(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| loop {
            let u = rng.uniform();
            let g = -(-u.ln()).ln();
            if g.is_finite() {
                break g as f32;
            }
        })
        .collect()
}

/// The sampled op of each row of `alphas` `[E, K]` under noise `gumbels` `[E, K]`:
/// `argmax_i (alpha_i + g_i)`, the first on a tie (see the module docs for why it is the
/// Gumbel-softmax's argmax).
pub fn sampled_ops(alphas: &[f32], gumbels: &[f32], k: usize) -> Vec<usize> {
    alphas
        .chunks(k)
        .zip(gumbels.chunks(k))
        .map(|(a, g)| {
            let score = |i: usize| a[i] as f64 + g[i] as f64;
            (1..k).fold(0, |best, i| if score(i) > score(best) { i } else { best })
        })
        .collect()
}

/// One cell type's sample: the straight-through weights and the sampled op of each edge.
pub struct HardSample {
    /// h = one_hot(index) - p.detach() + p, `[E, K]`.
    pub h: Tensor,
    /// The sampled op (column) of each edge.
    pub index: Vec<usize>,
}

impl HardSample {
    /// How a cell of this type mixes its edges: only the sampled ops.
    pub fn mixing(&self) -> Mixing<'_> {
        Mixing::Hard { h: &self.h, index: &self.index }
    }
}

/// The hard sample of `alpha` `[E, K]` (its values on the host: `host`) under noise `gumbels`
/// at temperature `tau`: p = softmax((log_softmax(alpha) + g) / tau), index = argmax(alpha + g),
/// h = one_hot(index) - p.detach() + p. h is recorded on the tape (its gradient is p's, so the
/// loss reaches alpha through log_softmax and softmax); one-hot minus p is a constant.
pub fn hard_sample(alpha: &Tensor, host: &[f32], gumbels: &[f32], tau: f32) -> Result<HardSample> {
    let gpu = alpha.gpu();
    let shape = alpha.shape().to_vec();
    let &[_, k] = &shape[..] else {
        return Err(Error::shape("hard_sample", format!("alphas must be [edges, ops], got {shape:?}")));
    };
    if host.len() != alpha.numel() || gumbels.len() != alpha.numel() || !(tau > 0.0 && tau.is_finite()) {
        return Err(Error::shape(
            "hard_sample",
            format!("{} alphas and {} draws for {shape:?} at tau {tau}", host.len(), gumbels.len()),
        ));
    }
    let index = sampled_ops(host, gumbels, k);
    let mut one_hot = vec![0.0; alpha.numel()];
    for (e, &i) in index.iter().enumerate() {
        one_hot[e * k + i] = 1.0;
    }
    // [1/tau, -1]: the scalars of the two scalings
    let scalars = Tensor::from_slice(gpu, &[2], &[1.0 / tau, -1.0])?;
    let g = Tensor::from_slice(gpu, &shape, gumbels)?;
    let logits = elementwise::scale(&elementwise::add(&softmax::log_softmax(alpha)?, &g)?, &scalars, 0)?;
    let p = softmax::softmax(&logits)?;
    let one_hot = Tensor::from_slice(gpu, &shape, &one_hot)?;
    let constant = gpu.no_grad(|| elementwise::add(&one_hot, &elementwise::scale(&p, &scalars, 1)?))?;
    Ok(HardSample { h: elementwise::add(&constant, &p)?, index })
}

/// GDAS's step and state: Adam on the alphas, the temperature schedule, and the noise stream.
pub struct Gumbel {
    /// Adam over [alphas_normal, alphas_reduce] (DARTS's settings).
    pub optimizer: Adam,
    temperature: Temperature,
    rng: Rng,
    /// The sampled ops of the last step's two halves: [weights' half, alphas' half], each
    /// [normal, reduce] (for tests and inspection; reduce is empty in NAS-Bench-201).
    pub last_sampled: Vec<[Vec<usize>; 2]>,
}

/// The noise stream is seeded apart from the search's other draws (weights, split, data order).
const NOISE_STREAM: u64 = 0x6764_6173_0000_0001;

impl Gumbel {
    /// Hard samples of every alpha matrix (host values `host`) at temperature `tau`: [normal,
    /// reduce], or the one of NAS-Bench-201.
    fn sample(&mut self, alphas: &[Tensor], host: &[Vec<f32>], tau: f32) -> Result<Vec<HardSample>> {
        (0..alphas.len())
            .map(|i| hard_sample(&alphas[i], &host[i], &gumbel_noise(&mut self.rng, host[i].len()), tau))
            .collect()
    }
}

/// The mixing of [normal, reduce] cells from their samples; NAS-Bench-201's one sample serves
/// both (its network reads only the first).
fn mixings(sample: &[HardSample]) -> [Mixing<'_>; 2] {
    [sample[0].mixing(), sample[sample.len() - 1].mixing()]
}

/// The sampled ops of each cell type: [normal, reduce]; reduce is empty in NAS-Bench-201.
fn indices(sample: &[HardSample]) -> [Vec<usize>; 2] {
    [sample[0].index.clone(), sample.get(1).map(|s| s.index.clone()).unwrap_or_default()]
}

/// The reference's `GDAS.py` step: weights on a training batch, then alphas on a validation
/// batch, each through its own hard sample at this epoch's temperature.
impl Relaxation for Gumbel {
    type State = Option<Rng>;
    const KIND: &'static str = "gdas";
    const NAME: &'static str = "a GDAS search";
    const ALPHAS_FIRST: bool = false;
    const EVALUATES_ARGMAX: bool = true;

    fn new(net: &Network, config: &SearchConfig) -> Result<Gumbel> {
        let Some(temperature) = config.temperature else {
            return Err(Error::Config("GDAS needs a temperature schedule (tau_max, tau_min)".into()));
        };
        temperature.validate()?;
        if config.architect.order != super::Order::First {
            return Err(Error::Config(
                "GDAS's alpha gradient is first order (through its hard samples): leave out --order 2".into(),
            ));
        }
        if config.network.partial.is_some() {
            return Err(Error::Config(
                "GDAS samples one op per whole edge; partial channels are PC-DARTS's (search pc-darts)".into(),
            ));
        }
        let a = &config.architect;
        Ok(Gumbel {
            optimizer: Adam::new(&net.alphas(), a.lr, a.beta1, a.beta2, 1e-8, a.weight_decay)?,
            temperature,
            rng: Rng::new(config.seed ^ NOISE_STREAM),
            last_sampled: vec![],
        })
    }

    async fn step(&mut self, mut s: StepParts<'_>, between_halves: &mut dyn FnMut()) -> Result<Recorded> {
        let tau = self.temperature.at(s.epoch, s.config.epochs);
        let ((xt, yt), (xv, yv)) = s.batches()?;
        let alphas = s.net.alphas();
        let host = read_all(&alphas.iter().collect::<Vec<_>>()).await?;
        let net = s.net;

        // The weights, through a sample the tape treats as constant (recording is for the weights).
        let sample = self.sample(&alphas, &host, tau)?;
        let (train_loss, train_acc) = s.weight_step(&xt, &yt, |x| net.forward_mixed(x, mixings(&sample), true))?;
        let weights_half = indices(&sample);
        drop(sample);
        between_halves();

        // The alphas, through a fresh sample.
        let (logits, sample) = s.gpu.recording_for(&alphas, || -> Result<_> {
            let sample = self.sample(&alphas, &host, tau)?;
            Ok((net.forward_mixed(&xv, mixings(&sample), true)?, sample))
        })?;
        let val_loss = softmax::cross_entropy(&logits, &yv)?;
        let val_acc = softmax::accuracy(&logits, &yv)?;
        let g = s.gpu.grad(&val_loss, &alphas)?;
        self.optimizer.step(&alphas, &g)?;
        self.last_sampled = vec![weights_half, indices(&sample)];
        Ok(Recorded { lr: s.lr, scalars: vec![train_loss, train_acc, val_loss, val_acc] })
    }

    fn alpha_optimizer(&mut self) -> &mut dyn Optimizer {
        &mut self.optimizer
    }

    fn state(&self) -> Option<Rng> {
        Some(self.rng.clone())
    }

    fn restore(&mut self, state: Option<Rng>) -> Result<()> {
        match state {
            Some(rng) => {
                self.rng = rng;
                Ok(())
            }
            None => Err(Error::Config("the checkpoint of this GDAS search has no noise stream to continue".into())),
        }
    }
}
