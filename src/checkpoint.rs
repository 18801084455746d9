//! Checkpoints: named f32 tensors plus a JSON header of everything else a run needs to continue
//! exactly (schedule position, RNG, data cursors, optimizer step counts).
//!
//! File layout (format 2): the magic `WGPUNAS2`, the header length (u64, little endian), the
//! header (JSON: `{kind, meta, run, tensors: [{name, shape}]}`), the tensors' f32 values, little
//! endian, in header order, then the CRC-32 (u32, little endian) of every byte before it, checked
//! on load. Format 1 (`WGPUNAS1`: no `run`, no checksum) still loads. Files are written
//! atomically: to `NAME.tmp` beside the target, flushed, then renamed over it, so a crash
//! mid-write leaves the previous checkpoint intact (and a failed write removes the `.tmp`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::{self, Tensor};

const MAGIC: &[u8; 8] = b"WGPUNAS2";
/// Format 1: the same without the `run` section and the checksum.
const MAGIC_V1: &[u8; 8] = b"WGPUNAS1";

/// One tensor's entry in the header: its name and shape (the values follow in header order).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The tensor's name: a dotted parameter or buffer path (`stem.bn.running_mean`) or a state name.
    pub name: String,
    /// The tensor's shape; the file holds its product of f32 values, row-major.
    pub shape: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    kind: String,
    meta: serde_json::Value,
    #[serde(default)]
    run: serde_json::Value,
    tensors: Vec<Entry>,
}

/// A checkpoint in memory.
pub struct Checkpoint {
    /// What wrote it ("darts", "enas", "train"): resuming the wrong kind is an error.
    pub kind: String,
    /// Everything else the writer needs to continue (config, schedule position, RNG state, data
    /// cursors, optimizer step counts), as JSON whose layout each kind defines.
    pub meta: serde_json::Value,
    /// The run directory's bookkeeping (log lengths, the data set's fingerprint); `Null` outside
    /// a run directory. See `run_dir`.
    pub run: serde_json::Value,
    /// The tensors in file order, each with its f32 values, row-major.
    pub tensors: Vec<(Entry, Vec<f32>)>,
}

impl Checkpoint {
    /// Reads the named tensors back from the GPU (one submission) into a checkpoint.
    pub async fn capture(kind: &str, meta: serde_json::Value, named: &[(String, Tensor)]) -> Result<Checkpoint> {
        let refs: Vec<&Tensor> = named.iter().map(|(_, t)| t).collect();
        let values = tensor::read_all(&refs).await?;
        let tensors = named
            .iter()
            .zip(values)
            .map(|((name, t), v)| (Entry { name: name.clone(), shape: t.shape().to_vec() }, v))
            .collect();
        Ok(Checkpoint { kind: kind.into(), meta, run: serde_json::Value::Null, tensors })
    }

    /// Writes every tensor of the checkpoint into the tensor of the same name (shapes must
    /// agree; every named tensor must be present).
    pub fn restore_into(&self, named: &[(String, Tensor)]) -> Result<()> {
        for (name, t) in named {
            let (entry, values) = self
                .tensors
                .iter()
                .find(|(e, _)| &e.name == name)
                .ok_or_else(|| Error::Config(format!("the checkpoint has no tensor {name:?}")))?;
            if entry.shape != t.shape() {
                return Err(Error::Config(format!(
                    "checkpoint tensor {name} has shape {:?}, the model expects {:?}: \
                     resume with the settings the run was started with",
                    entry.shape,
                    t.shape()
                )));
            }
            t.write(values)?;
        }
        Ok(())
    }

    /// The file's bytes in format 2: magic, header length, JSON header, the values, the CRC-32.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = Header {
            kind: self.kind.clone(),
            meta: self.meta.clone(),
            run: self.run.clone(),
            tensors: self.tensors.iter().map(|(e, _)| e.clone()).collect(),
        };
        let json = serde_json::to_vec(&header)?;
        let data: usize = self.tensors.iter().map(|(_, v)| v.len() * 4).sum();
        let mut out = Vec::with_capacity(16 + json.len() + data + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        for (_, v) in &self.tensors {
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Parses a format 2 file (checking its CRC-32) or a format 1 file; `source` names the file in
    /// errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Checkpoint> {
        let bad = |msg: String| Error::File { path: source.into(), msg };
        let checksummed = bytes.len() >= 8 && &bytes[..8] == MAGIC;
        if bytes.len() < 16 || !(checksummed || &bytes[..8] == MAGIC_V1) {
            return Err(bad("not a wgpu-nas checkpoint (bad magic bytes)".into()));
        }
        let bytes = if checksummed {
            let (body, tail) = bytes.split_at(bytes.len().saturating_sub(4).max(16));
            let stored = tail.try_into().map(u32::from_le_bytes).map_err(|_| bad("truncated: no checksum".into()))?;
            let actual = crc32fast::hash(body);
            if stored != actual {
                return Err(bad(format!(
                    "the checkpoint is damaged (CRC-32 {actual:08x}, the file says {stored:08x}): \
                     restore it from a copy or start the run again"
                )));
            }
            body
        } else {
            bytes
        };
        let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
        let json = bytes.get(16..16 + len).ok_or_else(|| bad("truncated header".into()))?;
        let header: Header =
            serde_json::from_slice(json).map_err(|e| bad(format!("unreadable checkpoint header: {e}")))?;
        let mut at = 16 + len;
        let mut tensors = Vec::with_capacity(header.tensors.len());
        for entry in header.tensors {
            let n: usize = entry.shape.iter().product();
            let raw =
                bytes.get(at..at + 4 * n).ok_or_else(|| bad(format!("truncated: tensor {} is cut off", entry.name)))?;
            at += 4 * n;
            let values = raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
            tensors.push((entry, values));
        }
        if at != bytes.len() {
            return Err(bad(format!("{} unexpected bytes after the last tensor", bytes.len() - at)));
        }
        Ok(Checkpoint { kind: header.kind, meta: header.meta, run: header.run, tensors })
    }

    /// Writes atomically: a temporary file beside `path`, flushed, then renamed over it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        crate::durable::write_atomic_then(path, &self.to_bytes()?, || crate::durable::test_hook("checkpoint-written"))
    }

    /// Reads and parses the checkpoint file at `path`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &std::path::Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::File {
            path: path.display().to_string(),
            msg: format!("{e}; give the run directory of an earlier run"),
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// The tensor values of `name`.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.tensors.iter().find(|(e, _)| e.name == name).map(|(_, v)| v.as_slice())
    }
}
