//! One error type for the whole crate: each variant says what went wrong and what to do.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    #[error(
        "no GPU adapter found ({backends}). Install a Vulkan driver: on Debian/Ubuntu \
         `apt-get install mesa-vulkan-drivers libvulkan1` gives a CPU fallback (lavapipe); \
         on other systems install your GPU vendor's driver"
    )]
    NoAdapter { backends: String },

    #[error(
        "WGPU_ADAPTER_NAME={wanted:?} matches none of the adapters found: {seen}. \
         Unset it or use a part of one of these names"
    )]
    AdapterNotFound { wanted: String, seen: String },

    #[error("could not create a device on adapter {adapter:?}: {source}")]
    RequestDevice {
        adapter: String,
        #[source]
        source: wgpu::RequestDeviceError,
    },

    #[error("shape error in {op}: {msg}")]
    Shape { op: &'static str, msg: String },

    #[error(
        "tensor of {bytes} bytes exceeds the adapter's storage-binding limit of {limit} bytes; \
         use a smaller batch size or fewer channels"
    )]
    TooLarge { bytes: u64, limit: u64 },

    #[error("reading a buffer back from the GPU failed: {0}")]
    Readback(String),

    #[error("the GPU reported an error: {0}")]
    Gpu(String),

    #[error("the GPU device was lost: {0}; restart the run (a checkpoint keeps the last good state)")]
    DeviceLost(String),

    #[error(
        "{what} became NaN or infinite at step {step}, so the run stopped. Lower the learning rate (a run \
         with a checkpoint continues from it with --resume DIR --learning-rate LR) or check the data"
    )]
    NonFinite { step: u64, what: &'static str },

    #[error("{0}")]
    RunDir(String),

    #[error("writing to standard output failed: {0}")]
    Output(String),

    #[error("{path}: {msg}")]
    File { path: String, msg: String },

    #[error("invalid fixture {file}: {msg}")]
    Fixture { file: String, msg: String },

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// The process exit code for this error: 3 for a loss that became NaN or infinite, 4 for
    /// output that could not be written, 2 for everything else (bad input or settings, files).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NonFinite { .. } => 3,
            Error::Output(_) => 4,
            _ => 2,
        }
    }

    pub(crate) fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }
}
