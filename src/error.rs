//! One error type for the whole crate: each variant says what went wrong and what to do.

use thiserror::Error;

/// The crate's result type: `Error` unless another is given.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the crate; the message says what and what to do.
#[derive(Debug, Error)]
pub enum Error {
    /// No adapter at all: wgpu found no GPU and no software driver.
    #[error(
        "no GPU adapter found ({backends}). Install a Vulkan driver: on Debian/Ubuntu \
         `apt-get install mesa-vulkan-drivers libvulkan1` gives a CPU fallback (lavapipe); \
         on other systems install your GPU vendor's driver"
    )]
    NoAdapter {
        /// The backends that were searched (native) or the browser's reason (web).
        backends: String,
    },

    /// `WGPU_ADAPTER_NAME` matches none of the adapters found.
    #[error(
        "WGPU_ADAPTER_NAME={wanted:?} matches none of the adapters found: {seen}. \
         Unset it or use a part of one of these names"
    )]
    AdapterNotFound {
        /// The value of `WGPU_ADAPTER_NAME`.
        wanted: String,
        /// The names of the adapters that were found.
        seen: String,
    },

    /// The adapter refused to create a device (limits or features it lacks).
    #[error("could not create a device on adapter {adapter:?}: {source}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's reason.
        #[source]
        source: wgpu::RequestDeviceError,
    },

    /// An op got inputs of shapes it cannot take.
    #[error("shape error in {op}: {msg}")]
    Shape {
        /// The op's name.
        op: &'static str,
        /// What did not fit, with the shapes.
        msg: String,
    },

    /// A tensor is larger than one storage binding can be on this adapter.
    #[error(
        "tensor of {bytes} bytes exceeds the adapter's storage-binding limit of {limit} bytes; \
         use a smaller batch size or fewer channels"
    )]
    TooLarge {
        /// Size of the tensor, in bytes.
        bytes: u64,
        /// The adapter's `max_storage_buffer_binding_size`, in bytes.
        limit: u64,
    },

    /// Mapping a buffer for reading failed; the message is wgpu's.
    #[error("reading a buffer back from the GPU failed: {0}")]
    Readback(String),

    /// An uncaptured device error (validation, out of memory, a shader the driver rejects),
    /// reported at the next readback; the message is wgpu's.
    #[error("the GPU reported an error: {0}")]
    Gpu(String),

    /// The device was lost (driver reset, GPU removed); the message is wgpu's.
    #[error("the GPU device was lost: {0}; restart the run (a checkpoint keeps the last good state)")]
    DeviceLost(String),

    /// A loss became NaN or infinite; the run stops and keeps its last checkpoint.
    #[error(
        "{what} became NaN or infinite at step {step}, so the run stopped. Lower the learning rate (a run \
         with a checkpoint continues from it with --resume DIR --learning-rate LR) or check the data"
    )]
    NonFinite {
        /// The global step at which it was seen.
        step: u64,
        /// What became non-finite, e.g. "the training loss".
        what: &'static str,
    },

    /// A run directory cannot be used as asked (`--out` onto a run, `--resume` of the wrong kind).
    #[error("{0}")]
    RunDir(String),

    /// Writing to standard output failed (a closed pipe, a full disk).
    #[error("writing to standard output failed: {0}")]
    Output(String),

    /// A file could not be read, written or parsed.
    #[error("{path}: {msg}")]
    File {
        /// The file's path.
        path: String,
        /// What was wrong with it.
        msg: String,
    },

    /// A PyTorch fixture file (`golden/`) does not have the expected contents.
    #[error("invalid fixture {file}: {msg}")]
    Fixture {
        /// The fixture file's name.
        file: String,
        /// What was wrong with it.
        msg: String,
    },

    /// A setting is out of range or settings contradict each other.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// An I/O error without a file name to add.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// JSON that could not be read or written.
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
