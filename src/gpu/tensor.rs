//! Tensors: f32 (or u32 labels/indices) arrays on the GPU, row-major, activations NCHW.
//!
//! A `Tensor` is a cheap handle (`Rc`): clones share the buffer and the id, and the buffer goes
//! back to the pool when the last handle drops. Tensors are values: ops make new ones; only
//! optimizers and BN's running statistics write into existing buffers.

use std::cell::Cell;
use std::fmt;
use std::rc::{Rc, Weak};

use super::{Gpu, GpuBuffer};
use crate::error::{Error, Result};

/// The element type of a tensor; both are 4 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float: activations, parameters, gradients.
    F32,
    /// 32-bit unsigned integer: class labels, indices, sampled decisions.
    U32,
}

/// A row-major array on the GPU (activations [N, C, H, W]), a cheap shared handle: clones share
/// the buffer and the id.
#[derive(Clone)]
pub struct Tensor(Rc<TensorInner>);

pub(crate) struct TensorInner {
    id: u64,
    shape: Vec<usize>,
    dtype: DType,
    storage: Rc<Storage>,
    requires_grad: Cell<bool>,
}

/// A pooled buffer, shared by a tensor and its reshaped views; back to the pool on drop.
struct Storage {
    buf: Option<GpuBuffer>,
    gpu: Gpu,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.gpu.release(buf);
        }
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor#{}{:?}{:?}", self.id(), self.shape(), self.dtype())
    }
}

/// A weak handle on a tensor's `requires_grad` flag (see [`Tensor::flag`]).
pub(crate) struct GradFlag(Weak<TensorInner>);

impl GradFlag {
    /// Switches the flag off if the tensor is alive and requires a gradient; says whether it did.
    pub(crate) fn switch_off(&self) -> bool {
        match self.0.upgrade() {
            Some(t) if t.requires_grad.get() => {
                t.requires_grad.set(false);
                true
            }
            _ => false,
        }
    }

    /// Another weak handle on the same flag.
    pub(crate) fn clone_weak(&self) -> GradFlag {
        GradFlag(self.0.clone())
    }

    /// Switches the flag back on if the tensor is alive.
    pub(crate) fn switch_on(&self) {
        if let Some(t) = self.0.upgrade() {
            t.requires_grad.set(true);
        }
    }
}

/// Number of elements of a tensor of `shape` (1 for `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// A tensor whose contents are undefined: for op outputs that a kernel fully writes.
    pub(crate) fn uninit(gpu: &Gpu, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let buf = gpu.alloc(numel(shape) as u64 * 4)?;
        Ok(Tensor(Rc::new(TensorInner {
            id: gpu.next_id(),
            shape: shape.to_vec(),
            dtype,
            storage: Rc::new(Storage { buf: Some(buf), gpu: gpu.clone() }),
            requires_grad: Cell::new(false),
        })))
    }

    /// An f32 tensor with undefined contents (an op's output).
    pub(crate) fn empty(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        Self::uninit(gpu, shape, DType::F32)
    }

    /// An f32 tensor of zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        let t = Self::empty(gpu, shape)?;
        gpu.clear(t.buf(), t.bytes());
        Ok(t)
    }

    /// An f32 tensor with these values, row-major; `data.len()` must be the shape's element count.
    pub fn from_slice(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        if data.len() != numel(shape) {
            return Err(Error::shape(
                "from_slice",
                format!("{} values for shape {shape:?} ({} elements)", data.len(), numel(shape)),
            ));
        }
        let t = Self::empty(gpu, shape)?;
        gpu.upload(t.buf(), 0, bytemuck::cast_slice(data));
        Ok(t)
    }

    /// A u32 tensor (labels, indices) with these values, row-major.
    pub fn from_u32(gpu: &Gpu, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        if data.len() != numel(shape) {
            return Err(Error::shape(
                "from_u32",
                format!("{} values for shape {shape:?} ({} elements)", data.len(), numel(shape)),
            ));
        }
        let t = Self::uninit(gpu, shape, DType::U32)?;
        gpu.upload(t.buf(), 0, bytemuck::cast_slice(data));
        Ok(t)
    }

    /// An f32 tensor with every element `value`.
    pub fn full(gpu: &Gpu, shape: &[usize], value: f32) -> Result<Tensor> {
        Self::from_slice(gpu, shape, &vec![value; numel(shape)])
    }

    /// A trainable parameter: gradients flow to it through the tape.
    pub fn param(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        let t = Self::from_slice(gpu, shape, data)?;
        t.set_requires_grad(true);
        Ok(t)
    }

    /// Overwrites the contents (in stream order with the recorded work).
    pub fn write(&self, data: &[f32]) -> Result<()> {
        if data.len() != self.numel() {
            return Err(Error::shape("write", format!("{} values for {:?}", data.len(), self.shape())));
        }
        self.gpu().upload(self.buf(), 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Overwrites the contents with those of `src` (same number of elements), on the GPU.
    pub fn copy_from(&self, src: &Tensor) -> Result<()> {
        if src.numel() != self.numel() {
            return Err(Error::shape("copy_from", format!("{:?} into {:?}", src.shape(), self.shape())));
        }
        self.gpu().copy(src.buf(), 0, self.buf(), 0, self.bytes());
        Ok(())
    }

    /// Copies all of `self` into `dst` starting at element `offset`, on the GPU (not recorded).
    pub fn copy_into(&self, dst: &Tensor, offset: usize) -> Result<()> {
        if offset + self.numel() > dst.numel() {
            return Err(Error::shape(
                "copy_into",
                format!("{:?} does not fit into {:?} at element {offset}", self.shape(), dst.shape()),
            ));
        }
        self.gpu().copy(self.buf(), 0, dst.buf(), offset as u64 * 4, self.bytes());
        Ok(())
    }

    /// A new tensor with the same contents (a GPU copy), not tracked by the tape.
    pub fn duplicate(&self) -> Result<Tensor> {
        let t = Self::uninit(self.gpu(), self.shape(), self.dtype())?;
        t.copy_from(self)?;
        Ok(t)
    }

    /// Sets all elements to zero, on the GPU.
    pub fn zero_(&self) {
        self.gpu().clear(self.buf(), self.bytes());
    }

    /// Identifies the tensor on the tape; unique per `Gpu`, a reshaped view gets a new one.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// A handle on the tensor that does not keep it alive (the tape's, to switch off
    /// gradients nobody asked for during one backward pass).
    pub(crate) fn flag(&self) -> GradFlag {
        GradFlag(Rc::downgrade(&self.0))
    }

    /// The shape, outermost axis first.
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }

    /// The GPU context the tensor lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.0.storage.gpu
    }

    pub(crate) fn buf(&self) -> &GpuBuffer {
        self.0.storage.buf.as_ref().expect("buffer present until drop")
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.numel() as u64 * 4
    }

    /// Whether ops on it are recorded for the backward pass (parameters, and results of such ops).
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.get()
    }

    /// Turns gradient tracking on or off (the architect freezes the alphas for the weight step).
    pub fn set_requires_grad(&self, on: bool) {
        self.0.requires_grad.set(on);
    }

    /// The same buffer seen with another shape of as many elements (no copy). The view is a
    /// new node for the tape: gradients flow back through it to `self`.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape("reshape", format!("{:?} to {shape:?}", self.shape())));
        }
        let out = Tensor(Rc::new(TensorInner {
            id: self.gpu().next_id(),
            shape: shape.to_vec(),
            dtype: self.dtype(),
            storage: self.0.storage.clone(),
            requires_grad: Cell::new(false),
        }));
        let in_shape = self.shape().to_vec();
        self.gpu().record(&[self], &[&out], move |g| Ok(vec![Some(g[0].reshape(&in_shape)?)]));
        Ok(out)
    }

    /// Reads the contents back (async: works on the web).
    pub async fn read(&self) -> Result<Vec<f32>> {
        let bytes = self.gpu().read_buffers(&[(self.buf(), self.bytes())]).await?;
        Ok(bytemuck::cast_slice(&bytes[0]).to_vec())
    }

    /// Reads a u32 tensor back (async: works on the web).
    pub async fn read_u32(&self) -> Result<Vec<u32>> {
        let bytes = self.gpu().read_buffers(&[(self.buf(), self.bytes())]).await?;
        Ok(bytemuck::cast_slice(&bytes[0]).to_vec())
    }

    /// Blocking read, native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        pollster::block_on(self.read())
    }

    /// Blocking [`Tensor::read_u32`], native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        pollster::block_on(self.read_u32())
    }

    /// The single value of a one-element tensor (blocking, native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn item(&self) -> Result<f32> {
        Ok(self.to_vec()?[0])
    }
}

/// Reads several tensors back with one submission and one map.
pub async fn read_all(tensors: &[&Tensor]) -> Result<Vec<Vec<f32>>> {
    let Some(first) = tensors.first() else { return Ok(vec![]) };
    let parts: Vec<_> = tensors.iter().map(|t| (t.buf(), t.bytes())).collect();
    let bytes = first.gpu().read_buffers(&parts).await?;
    Ok(bytes.iter().map(|b| bytemuck::cast_slice(b).to_vec()).collect())
}
