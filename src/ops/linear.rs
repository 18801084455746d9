//! Dense layers (`shaders/linear.wgsl`): y = x @ w^T + b, the classifier of DARTS and the
//! gates of the ENAS controller. Forward and both weight-side gradients are one tiled matmul
//! kernel with transpose flags; the bias gradient is a column sum. No atomics: every output is
//! a sum in a fixed order.

use bytemuck::{Pod, Zeroable};

use super::dims;
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch};
use crate::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
}

/// Side of the square output block one workgroup of `matmul` computes.
const TILE: usize = 16;

/// Which operand is stored transposed: `a` as [K, M], `b` as [N, K].
#[derive(Clone, Copy)]
struct Layout {
    trans_a: bool,
    trans_b: bool,
}

/// c = op(a) @ op(b) (+ bias), not recorded; `m, n, k` are the logical sizes: op(a) is [m, k],
/// op(b) is [k, n], c is [m, n].
fn matmul(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    layout: Layout,
    [m, n, k]: [usize; 3],
) -> Result<Tensor> {
    let gpu = a.gpu();
    let groups = [n.div_ceil(TILE).max(1), m.div_ceil(TILE).max(1)];
    if groups.iter().any(|&g| g > 65535) {
        return Err(Error::shape(op, format!("a [{m}, {n}] product needs more than 65535 workgroups along one axis")));
    }
    let c = Tensor::empty(gpu, &[m, n])?; // c: [M, N]
    let params = Params { m: m as u32, n: n as u32, k: k as u32, _pad: 0 };
    let constants = [
        ("TRANS_A", layout.trans_a as u32 as f64),
        ("TRANS_B", layout.trans_b as u32 as f64),
        ("HAS_BIAS", bias.is_some() as u32 as f64),
    ];
    // Without a bias the kernel never reads binding 3, but the layout has it: bind `a` there.
    let bias_buf = bias.unwrap_or(a).buf();
    gpu.dispatch(Dispatch {
        shader: "linear",
        entry: "matmul",
        constants: &constants,
        params: bytemuck::bytes_of(&params),
        buffers: &[a.buf(), b.buf(), bias_buf, c.buf()],
        workgroups: [groups[0] as u32, groups[1] as u32, 1],
        flops: 2 * (m * n * k) as u64,
    });
    Ok(c)
}

/// out[n] = sum over rows of x[m, n], not recorded.
fn sum_rows(x: &Tensor, [m, n]: [usize; 2]) -> Result<Tensor> {
    let out = Tensor::empty(x.gpu(), &[n])?; // out: [N]
    let params = Params { m: m as u32, n: n as u32, k: 0, _pad: 0 };
    x.gpu().dispatch(Dispatch {
        shader: "linear",
        entry: "sum_rows",
        constants: &[],
        params: bytemuck::bytes_of(&params),
        buffers: &[x.buf(), out.buf()],
        workgroups: grid_1d(n),
        flops: 0,
    });
    Ok(out)
}

fn check_f32(op: &'static str, name: &str, t: &Tensor) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::shape(op, format!("{name} must be f32, got {:?}", t.dtype())));
    }
    Ok(())
}

/// y = x @ w^T + b. x: [N, in], w: [out, in], b: `[out]` -> y: [N, out].
/// Gradients: dx = dy @ w, dw = dy^T @ x, db = sum over N of dy.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "linear";
    let [batch, fan_in] = dims::<2>(OP, x)?;
    let [fan_out, w_in] = dims::<2>(OP, w)?;
    if w_in != fan_in {
        return Err(Error::shape(
            OP,
            format!("x {:?} has {fan_in} features, weight {:?} expects {w_in}", x.shape(), w.shape()),
        ));
    }
    check_f32(OP, "x", x)?;
    check_f32(OP, "weight", w)?;
    if let Some(b) = b {
        check_f32(OP, "bias", b)?;
        if b.shape() != [fan_out] {
            return Err(Error::shape(OP, format!("bias {:?} should be [{fan_out}]", b.shape())));
        }
    }

    // y: [N, out] = x [N, in] @ (w [out, in])^T
    let y = matmul(OP, x, w, b, Layout { trans_a: false, trans_b: true }, [batch, fan_out, fan_in])?;

    let (sx, sw, sb) = (x.clone(), w.clone(), b.cloned());
    let mut inputs = vec![x, w];
    inputs.extend(b);
    x.gpu().record(&inputs, &[&y], move |g| {
        // dy: [N, out]
        let dy = &g[0];
        // dx: [N, in] = dy [N, out] @ w [out, in]
        let dx = if sx.requires_grad() {
            Some(matmul(OP, dy, &sw, None, Layout { trans_a: false, trans_b: false }, [batch, fan_in, fan_out])?)
        } else {
            None
        };
        // dw: [out, in] = (dy [N, out])^T @ x [N, in]
        let dw = if sw.requires_grad() {
            Some(matmul(OP, dy, &sx, None, Layout { trans_a: true, trans_b: false }, [fan_out, fan_in, batch])?)
        } else {
            None
        };
        let mut grads = vec![dx, dw];
        if let Some(sb) = &sb {
            // db: [out]
            grads.push(if sb.requires_grad() { Some(sum_rows(dy, [batch, fan_out])?) } else { None });
        }
        Ok(grads)
    });
    Ok(y)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/linear.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "linear", [m, n, k]);
    }
}
