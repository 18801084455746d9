//! The auxiliary classifier of the evaluation networks (quark0/darts `model.py`
//! `AuxiliaryHeadCIFAR`), and the parameter count that leaves it out.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{join, BatchNorm, Conv, Linear, Module, Visit};
use crate::ops::{conv::Conv2d, elementwise, linear, pool};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// The auxiliary head's average pool (kernel, stride), padding 0, for a `size` x `size`
/// feature map: always a 2x2 output, so that the 2x2 conv after it leaves 1x1 and the
/// classifier sees 768 features.
///
/// The reference hard-codes kernel 5, stride 3, which assumes 8x8 (32x32 CIFAR images after two
/// reductions). We keep that exactly for 8x8 and generalise it: stride t = max(1, floor(3s/8)),
/// kernel s - t, so windows start at 0 and t and the last one ends at the border: 28x28 images
/// (7x7 here) get kernel 5, stride 2; 16x16 (4x4) kernel 3, stride 1. With no padding
/// `count_include_pad` makes no difference.
pub fn auxiliary_pool(size: usize) -> Result<(usize, usize)> {
    if size < 2 {
        return Err(Error::Config(format!(
            "the auxiliary head needs a feature map of at least 2x2 after two reductions, got {size}x{size}; \
             use larger images or turn the auxiliary head off"
        )));
    }
    let stride = (3 * size / 8).max(1);
    Ok((size - stride, stride))
}

/// `AuxiliaryHeadCIFAR`: ReLU, avg pool to 2x2, conv 1x1 to 128, BN, ReLU, conv 2x2 to 768, BN,
/// ReLU, linear. Its parameters are named `auxiliary_head.*` and left out of the parameter count.
pub struct AuxiliaryHeadCifar {
    conv1: Conv,
    bn1: BatchNorm,
    conv2: Conv,
    bn2: BatchNorm,
    classifier: Linear,
}

impl AuxiliaryHeadCifar {
    /// The head on `c` channels at the auxiliary cell, classifying into `num_classes`.
    pub fn new(gpu: &Gpu, rng: &mut Rng, c: usize, num_classes: usize) -> Result<Self> {
        Ok(AuxiliaryHeadCifar {
            conv1: Conv::new(gpu, rng, c, 128, 1, Conv2d::new(1, 0, 1, 1))?,
            bn1: BatchNorm::new(gpu, 128, true)?,
            conv2: Conv::new(gpu, rng, 128, 768, 2, Conv2d::new(1, 0, 1, 1))?,
            bn2: BatchNorm::new(gpu, 768, true)?,
            classifier: Linear::new(gpu, rng, 768, num_classes, true)?,
        })
    }

    /// x: [N, C, s, s] -> logits [N, classes].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (h, w) = (x.shape()[2], x.shape()[3]);
        if h != w {
            return Err(Error::Config(format!(
                "the auxiliary head needs square feature maps, got {h}x{w}; turn it off for non-square images"
            )));
        }
        let (kernel, stride) = auxiliary_pool(h)?;
        let y = pool::avg_pool2d(&elementwise::relu(x)?, kernel, stride, 0)?; // [N, C, 2, 2]
        let y = self.bn1.forward_relu(&self.conv1.forward(&y)?, train)?; // [N, 128, 2, 2]
                                                                         // A 2x2 conv on a 2x2 map has one output position: it is the product of the flattened
                                                                         // map [N, 128*2*2] with the weight seen as [768, 128*2*2] (OIHW flattens as CHW does).
                                                                         // The linear op's tiled matmul gives the same sums, and a weight gradient far cheaper
                                                                         // than the conv kernel's per-filter reduction over a single position.
        let n = y.shape()[0];
        let w = self.conv2.weight.reshape(&[768, 128 * 4])?;
        let y = linear::linear(&y.reshape(&[n, 128 * 4])?, &w, None)?.reshape(&[n, 768, 1, 1])?;
        let y = self.bn2.forward_relu(&y, train)?; // [N, 768, 1, 1]
        self.classifier.forward(&y.reshape(&[n, 768])?)
    }
}

impl Module for AuxiliaryHeadCifar {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.bn1.visit(&join(prefix, "bn1"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        self.bn2.visit(&join(prefix, "bn2"), f);
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}
