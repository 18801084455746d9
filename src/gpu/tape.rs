//! The tape the ops record on: for each op run while gradients are enabled and an input requires
//! one, its input and output ids, the inputs' `requires_grad` flags and its backward closure (which
//! holds what it saved). It lives with the device so that every op can record without knowing
//! the layer above; [`crate::autograd`] walks it backward.
//!
//! Recording happens only while gradients are enabled and some input requires a gradient, so
//! evaluation under `Gpu::no_grad` keeps nothing alive.

use std::collections::HashSet;

use super::tensor::{GradFlag, Tensor};
use super::Gpu;
use crate::error::Result;

/// Given the gradients of an op's outputs (zeros where an output got none), returns one entry
/// per input: `Some(gradient)` or `None` where the input needs none.
pub type BackwardFn = Box<dyn FnOnce(&[Tensor]) -> Result<Vec<Option<Tensor>>>>;

pub(crate) struct Entry {
    pub(crate) inputs: Vec<u64>,
    /// The inputs' `requires_grad` flags, held weakly (they keep nothing alive).
    pub(crate) flags: Vec<GradFlag>,
    pub(crate) outputs: Vec<(u64, Vec<usize>)>,
    pub(crate) backward: BackwardFn,
}

/// The ops recorded since the last backward pass, in execution order: each op's input ids, output
/// ids and shapes, and its backward closure. `Gpu::backward` consumes it.
#[derive(Default)]
pub struct Tape {
    entries: Vec<Entry>,
    /// Inside [`Gpu::recording_for`]: the tensors that depend on its `wrt` (an op is recorded
    /// only if one of its inputs is among them).
    scope: Option<HashSet<u64>>,
}

impl Tape {
    /// Number of recorded ops.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no op has been recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Gpu {
    /// Records an op on the tape when gradients are enabled and an input requires one; marks the
    /// outputs as requiring gradients then.
    pub(crate) fn record(
        &self,
        inputs: &[&Tensor],
        outputs: &[&Tensor],
        backward: impl FnOnce(&[Tensor]) -> Result<Vec<Option<Tensor>>> + 'static,
    ) {
        if !self.0.grad_enabled.get() {
            return;
        }
        let mut tape = self.0.tape.borrow_mut();
        let needed = match &tape.scope {
            Some(scope) => inputs.iter().any(|t| scope.contains(&t.id())),
            None => inputs.iter().any(|t| t.requires_grad()),
        };
        if !needed {
            return;
        }
        if let Some(scope) = &mut tape.scope {
            scope.extend(outputs.iter().map(|t| t.id()));
        }
        for o in outputs {
            o.set_requires_grad(true);
        }
        tape.entries.push(Entry {
            inputs: inputs.iter().map(|t| t.id()).collect(),
            flags: inputs.iter().map(|t| t.flag()).collect(),
            outputs: outputs.iter().map(|t| (t.id(), t.shape().to_vec())).collect(),
            backward: Box::new(backward),
        });
    }

    /// Runs `f` recording only what the gradients of `wrt` will need: an op is recorded only if
    /// it depends on `wrt`, so every other parameter is a constant in `f` (no saved activations,
    /// no gradient-only forward work for it). Then ask [`Gpu::grad`] for those gradients.
    pub fn recording_for<R>(&self, wrt: &[Tensor], f: impl FnOnce() -> R) -> R {
        let scope = wrt.iter().map(Tensor::id).collect();
        let outer = self.0.tape.borrow_mut().scope.replace(scope);
        let r = f();
        self.0.tape.borrow_mut().scope = outer;
        r
    }

    /// Runs `f` without recording anything on the tape (evaluation, optimizer updates).
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let was = self.0.grad_enabled.replace(false);
        let r = f();
        self.0.grad_enabled.set(was);
        r
    }

    /// False inside [`Gpu::no_grad`], where ops record nothing on the tape.
    pub fn is_grad_enabled(&self) -> bool {
        self.0.grad_enabled.get()
    }

    /// Number of ops recorded since the last backward pass.
    pub fn tape_len(&self) -> usize {
        self.0.tape.borrow().len()
    }

    /// Drops everything recorded (and the activations it kept alive).
    pub fn clear_tape(&self) {
        drop(self.take_tape());
    }

    /// Takes everything recorded, leaving the tape empty (the backward pass consumes it).
    pub(crate) fn take_tape(&self) -> Vec<Entry> {
        std::mem::take(&mut self.0.tape.borrow_mut().entries)
    }
}
