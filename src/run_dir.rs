//! A run directory holds one run: its config, its logs (JSON lines), its checkpoint and the
//! files derived from them (genotypes, plots). The rules that keep a week of results safe:
//!
//! - **One run per directory.** [`RunDir::create`] refuses a directory that holds a run (or
//!   anything else); with `force` an earlier run is moved aside to `DIR.replaced-N`, never
//!   overwritten in place.
//! - **The checkpoint is the commit point.** A run appends its logs and rewrites its derived
//!   files, then [`RunDir::commit`]s the checkpoint, which records every log's length. On
//!   resume, [`RunDir::prepare_resume`] cuts each log back to that length and removes stale
//!   `*.tmp` files, so a crash at any moment leaves files that a resumed run brings back to
//!   exactly those of a run straight through.
//! - Every other file is written atomically (a `.tmp` beside it, then a rename).
//!
//! [`crate::durable::test_hook`] lets the fault tests stop a run at a named point and kill it there.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::durable::{io_error as io, test_hook, write_atomic};
use crate::error::{Error, Result};

/// The checkpoint file of a run directory.
pub const CHECKPOINT: &str = "checkpoint.bin";
/// The config file written when a run starts.
pub const CONFIG: &str = "config.json";

/// What a checkpoint's `run` section holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RunSection {
    /// Bytes of each log file at the checkpoint.
    logs: BTreeMap<String, u64>,
    /// The data the run trains on, as the caller describes it (see [`RunDir::set_data`]).
    #[serde(default)]
    data: serde_json::Value,
}

/// An open run directory: its path, and the log lengths and data description that the next
/// checkpoint records.
pub struct RunDir {
    path: PathBuf,
    section: RunSection,
}

impl RunDir {
    /// A new run in `path` (created if missing; an empty directory is fine). A directory that
    /// holds a run is refused unless `force`, which moves it aside (the new path is returned);
    /// a non-empty directory that holds no run is always refused.
    pub fn create(path: &Path, force: bool) -> Result<(RunDir, Option<PathBuf>)> {
        let mut moved = None;
        if path.exists() {
            let entries = std::fs::read_dir(path).map_err(io(path))?.count();
            if entries > 0 {
                let is_run = path.join(CONFIG).exists() || path.join(CHECKPOINT).exists();
                if !is_run {
                    return Err(Error::RunDir(format!(
                        "{} is not empty and holds no wgpu-nas run; give --out a new or empty directory",
                        path.display()
                    )));
                }
                if !force {
                    return Err(Error::RunDir(format!(
                        "{} already holds a run: continue it with --resume {0}, or replace it with --force \
                         (the old run is moved aside, not deleted)",
                        path.display()
                    )));
                }
                let aside = (1..)
                    .map(|n| PathBuf::from(format!("{}.replaced-{n}", path.display())))
                    .find(|p| !p.exists())
                    .expect("a free name");
                std::fs::rename(path, &aside).map_err(io(path))?;
                moved = Some(aside);
            }
        }
        std::fs::create_dir_all(path).map_err(io(path))?;
        Ok((RunDir { path: path.to_path_buf(), section: RunSection::default() }, moved))
    }

    /// An existing run of `kind` ("darts", "gdas", "enas", "train": what wrote the checkpoint) and its
    /// last checkpoint, for resuming. Reads only: nothing in the directory changes until
    /// [`RunDir::prepare_resume`].
    pub fn open(path: &Path, kind: &str) -> Result<(RunDir, Checkpoint)> {
        if !path.is_dir() {
            return Err(Error::RunDir(format!(
                "{} is not a directory; --resume takes the run directory of an earlier run",
                path.display()
            )));
        }
        let file = path.join(CHECKPOINT);
        if !file.exists() && path.join(CONFIG).exists() {
            return Err(Error::RunDir(format!(
                "{} holds a run that stopped before its first checkpoint (written at the end of each epoch): \
                 start it again with --out {0} --force",
                path.display()
            )));
        }
        let checkpoint = Checkpoint::load(&file)?;
        if checkpoint.kind != kind {
            let name = |k: &str| match k {
                "darts" => "a DARTS search (`search darts`)".to_string(),
                "gdas" => "a GDAS search (`search gdas`)".to_string(),
                "enas" => "an ENAS search (`search enas`)".to_string(),
                "train" => "a retraining (`train`)".to_string(),
                other => format!("a {other} run"),
            };
            return Err(Error::RunDir(format!(
                "{} holds {}, not {}: resume it with the command that started it",
                path.display(),
                name(&checkpoint.kind),
                name(kind)
            )));
        }
        let section = match &checkpoint.run {
            serde_json::Value::Null => RunSection::default(),
            v => serde_json::from_value(v.clone()).map_err(|e| Error::File {
                path: file.display().to_string(),
                msg: format!("unreadable run section: {e}"),
            })?,
        };
        Ok((RunDir { path: path.to_path_buf(), section }, checkpoint))
    }

    /// Brings the directory back to its checkpoint: each log cut to the length the checkpoint
    /// records, stale `*.tmp` files removed. Call once every setting has been checked.
    pub fn prepare_resume(&self) -> Result<()> {
        for (name, &len) in &self.section.logs {
            let file = self.file(name);
            let now = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            if now < len {
                return Err(Error::RunDir(format!(
                    "{} has {now} bytes but the checkpoint records {len}: the run directory was changed by hand; \
                     put the file back or start a new run",
                    file.display()
                )));
            }
            if now > len {
                let f = std::fs::OpenOptions::new().write(true).open(&file).map_err(io(&file))?;
                f.set_len(len).map_err(io(&file))?;
                f.sync_all().map_err(io(&file))?;
            }
        }
        for entry in std::fs::read_dir(&self.path).map_err(io(&self.path))? {
            let p = entry.map_err(io(&self.path))?.path();
            if p.extension().is_some_and(|e| e == "tmp") {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        Ok(())
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether the directory holds a checkpoint yet.
    pub fn has_checkpoint(&self) -> bool {
        self.file(CHECKPOINT).exists()
    }

    /// Records what the run trains on (stored with every checkpoint, read back by
    /// [`RunDir::data`] on resume).
    pub fn set_data(&mut self, data: serde_json::Value) {
        self.section.data = data;
    }

    /// What [`RunDir::set_data`] recorded (`Null` for a checkpoint of an older version).
    pub fn data(&self) -> &serde_json::Value {
        &self.section.data
    }

    /// Writes `name` atomically: a `.tmp` beside it, then a rename.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.file(name), bytes)
    }

    /// Appends one JSON line per item to the log `name` (flushed to disk). The checkpoint of
    /// the next [`RunDir::commit`] records the new length.
    pub fn append<T: Serialize>(&mut self, name: &str, items: &[T]) -> Result<()> {
        let file = self.file(name);
        let mut text = String::new();
        for item in items {
            text.push_str(&serde_json::to_string(item)?);
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&file).map_err(io(&file))?;
        f.write_all(text.as_bytes()).map_err(io(&file))?;
        f.sync_data().map_err(io(&file))?;
        let len = f.metadata().map_err(io(&file))?.len();
        self.section.logs.insert(name.to_string(), len);
        test_hook("appended");
        Ok(())
    }

    /// Saves `checkpoint` (with the logs' lengths and the data description) atomically: from
    /// here on a resume continues after it.
    pub fn commit(&self, mut checkpoint: Checkpoint) -> Result<()> {
        checkpoint.run = serde_json::to_value(&self.section)?;
        test_hook("before-checkpoint");
        checkpoint.save(&self.file(CHECKPOINT))?;
        test_hook("committed");
        Ok(())
    }
}
