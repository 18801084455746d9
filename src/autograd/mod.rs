//! The backward pass: `Gpu::backward` walks the tape the ops recorded ([`crate::gpu`] keeps it,
//! see `gpu/tape.rs`) in reverse, hands each op's closure the gradients of its outputs, and sums
//! the gradients of a tensor that fed several ops: they are kept until the tensor's producer
//! runs (or, for a leaf, until the pass ends) and summed then, up to 8 in one dispatch, in the
//! order they came (bit for bit the chain of pairwise adds, in an eighth of the dispatches and
//! reads: a supernet state feeds a dozen op inputs).
//!
//! `Gpu::grad(loss, wrt)` (as `torch.autograd.grad`) computes only what the gradients of `wrt`
//! need: the ops on a path from `wrt` to the loss run backward, and their other inputs get no
//! gradient (a first-order architecture step takes no weight gradients, the weight step no
//! alpha gradients), without the caller switching `requires_grad` around the forward pass.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::gpu::tape::Entry;
use crate::gpu::Gpu;
use crate::ops;
use crate::tensor::{GradFlag, Tensor};

pub use crate::gpu::tape::{BackwardFn, Tape};

/// Gradients by tensor, as computed by one backward pass.
#[derive(Default)]
pub struct Grads {
    map: HashMap<u64, Tensor>,
}

impl Grads {
    /// The gradient of `t`, if the backward pass reached it.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }

    /// Removes and returns the gradient of `t`, if the backward pass reached it.
    pub fn take(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }

    /// The gradients of `ts` in order, zeros for a tensor that got none (a weight of an
    /// operation the step did not run, alphas of a cell type the network lacks).
    pub fn take_all(&mut self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        ts.iter()
            .map(|t| match self.take(t) {
                Some(g) => Ok(g),
                None => Tensor::zeros(t.gpu(), t.shape()),
            })
            .collect()
    }

    /// Number of tensors that got a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no tensor got a gradient.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Gpu {
    /// Gradients of a scalar (or of `sum(loss)`) with respect to every tensor on the tape that
    /// requires one. Consumes the tape.
    pub fn backward(&self, loss: &Tensor) -> Result<Grads> {
        let ones = Tensor::full(self, loss.shape(), 1.0)?;
        self.backward_from(&[(loss, ones)])
    }

    /// Gradients of `L = sum_k <outputs[k], upstream[k]>`. Consumes the tape.
    pub fn backward_from(&self, seeds: &[(&Tensor, Tensor)]) -> Result<Grads> {
        let entries = self.take_tape();
        self.run_backward(entries, seeds)
    }

    /// d loss / d t for each t of `wrt` (zeros for one the loss does not depend on), as
    /// `torch.autograd.grad`: only the ops on a path from `wrt` to the loss run backward, and
    /// no other tensor's gradient is computed. Consumes the tape.
    pub fn grad(&self, loss: &Tensor, wrt: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut entries = self.take_tape();
        // The tensors that depend on `wrt`, in recording order; the other ops cannot reach it.
        let mut reached: HashSet<u64> = wrt.iter().map(Tensor::id).collect();
        entries.retain(|e| {
            let on_path = e.inputs.iter().any(|id| reached.contains(id));
            if on_path {
                reached.extend(e.outputs.iter().map(|(id, _)| *id));
            }
            on_path
        });
        // Inputs of those ops that do not depend on `wrt` need no gradient: their flags are
        // off during the pass (every backward rule asks them), and back on afterwards.
        let switched: Vec<&GradFlag> = entries
            .iter()
            .flat_map(|e| e.inputs.iter().zip(&e.flags))
            .filter(|(id, flag)| !reached.contains(id) && flag.switch_off())
            .map(|(_, flag)| flag)
            .collect();
        // The flags outlive the entries the pass consumes: keep weak handles apart.
        let restore: Vec<GradFlag> = switched.iter().map(|f| f.clone_weak()).collect();
        let ones = Tensor::full(self, loss.shape(), 1.0)?;
        let result = self.run_backward(entries, &[(loss, ones)]);
        for flag in &restore {
            flag.switch_on();
        }
        result?.take_all(wrt)
    }

    fn run_backward(&self, entries: Vec<Entry>, seeds: &[(&Tensor, Tensor)]) -> Result<Grads> {
        let mut pending = Pending::default();
        // The backward rules' own ops are not recorded.
        let result = self.no_grad(|| {
            for (t, g) in seeds {
                pending.push(t.id(), g.clone())?;
            }
            for entry in entries.into_iter().rev() {
                if !entry.outputs.iter().any(|(id, _)| pending.0.contains_key(id)) {
                    continue;
                }
                let mut out_grads = Vec::with_capacity(entry.outputs.len());
                for (id, shape) in &entry.outputs {
                    // An output's gradient is complete here: every op that used it came later
                    // on the tape and has run already. It is dropped now to keep memory low;
                    // leaves (parameters, inputs) keep theirs for the caller.
                    out_grads.push(match pending.take(*id)? {
                        Some(g) => g,
                        None => Tensor::zeros(self, shape)?,
                    });
                }
                let in_grads = (entry.backward)(&out_grads)?;
                for (id, g) in entry.inputs.iter().zip(in_grads) {
                    if let Some(g) = g {
                        pending.push(*id, g)?;
                    }
                }
            }
            let mut grads = Grads::default();
            for id in pending.0.keys().copied().collect::<Vec<_>>() {
                if let Some(g) = pending.take(id)? {
                    grads.map.insert(id, g);
                }
            }
            Ok(grads)
        });
        result
    }
}

/// The gradients a backward pass has for each tensor so far, not yet summed.
#[derive(Default)]
struct Pending(HashMap<u64, Vec<Tensor>>);

impl Pending {
    /// Adds `g` to `id`'s gradients; eight of them are summed into one at once (one `sum8`
    /// dispatch), so that no more than eight are held.
    fn push(&mut self, id: u64, g: Tensor) -> Result<()> {
        let list = self.0.entry(id).or_default();
        list.push(g);
        if list.len() == ops::elementwise::SUM_TERMS {
            let sum = sum(list)?;
            *list = vec![sum];
        }
        Ok(())
    }

    /// `id`'s gradient, its parts summed in the order they came; `None` if it got none.
    fn take(&mut self, id: u64) -> Result<Option<Tensor>> {
        self.0.remove(&id).map(|list| sum(&list)).transpose()
    }
}

/// The sum of a non-empty list of gradients (the tensor itself for one).
fn sum(list: &[Tensor]) -> Result<Tensor> {
    match list {
        [g] => Ok(g.clone()),
        _ => ops::elementwise::add_n(&list.iter().collect::<Vec<_>>()),
    }
}
