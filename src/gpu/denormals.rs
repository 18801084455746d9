//! Subnormal floats flushed to zero in the threads of a CPU driver.
//!
//! Lavapipe runs shaders on worker threads that it starts while the instance and device are
//! created, and those threads inherit the creating thread's floating-point control (MXCSR on
//! x86). x86 computes on subnormal inputs and results in microcode, many times slower: a
//! pointwise product fed subnormal gradients took 6.6 ms instead of 0.44 ms (32x32x8x8,
//! lavapipe). WGSL lets an implementation flush f32 subnormals to zero, and GPUs do, so
//! [`FlushDenormals`] sets flush-to-zero and denormals-are-zero while [`super::Gpu::new_async`]
//! creates the device and restores the caller's setting afterwards: the driver's new threads
//! keep it, the caller's own arithmetic is untouched.

/// While alive: FTZ and DAZ set on this thread (x86 and x86_64). Elsewhere it does nothing.
pub(super) struct FlushDenormals {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    saved: u32,
}

/// MXCSR's flush-to-zero (results) and denormals-are-zero (inputs) bits.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
const FTZ_DAZ: u32 = 0x8000 | 0x0040;

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn mxcsr() -> u32 {
    let mut v = 0u32;
    // SAFETY: stores MXCSR into `v`, which lives for the call; SSE is baseline on every x86
    // target Rust supports with std.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut v as *mut u32, options(nostack, preserves_flags)) };
    v
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn set_mxcsr(v: u32) {
    // SAFETY: loads MXCSR from `v`; only the rounding and exception controls change.
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &v as *const u32, options(nostack, readonly, preserves_flags)) };
}

impl FlushDenormals {
    pub(super) fn new() -> FlushDenormals {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            let saved = mxcsr();
            set_mxcsr(saved | FTZ_DAZ);
            FlushDenormals { saved }
        }
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        FlushDenormals {}
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        set_mxcsr(self.saved);
    }
}
