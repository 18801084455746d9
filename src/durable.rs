//! Files written so that a crash never leaves half of one: [`write_atomic`] (a `.tmp` beside the
//! file, flushed, then renamed over it), and [`test_hook`], the points where the fault tests
//! stop a run to kill it. Below both the checkpoint and the run directory, which write through it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Turns an I/O error on `path` into the crate's error, naming the file.
pub(crate) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::File { path: path.display().to_string(), msg: e.to_string() }
}

/// Writes `path` atomically: a `.tmp` beside it, flushed, then renamed over it; a failed write
/// removes the `.tmp`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_then(path, bytes, || {})
}

/// [`write_atomic`], calling `before_rename` once the `.tmp` is written (the fault tests stop a
/// checkpoint there).
pub fn write_atomic_then(path: &Path, bytes: &[u8], before_rename: impl FnOnce()) -> Result<()> {
    let tmp = tmp_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path)(e));
    }
    before_rename();
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

/// Where [`write_atomic`] writes `path` before the rename: `NAME.tmp` beside it.
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}.tmp"))
}

/// For the fault tests: with `WGPU_NAS_TEST_HOOK=POINT:N:FILE` set, the N-th time the run
/// reaches `POINT` it creates FILE and waits there to be killed. Points: `step` (a step's
/// metrics read back), `appended` (a log line appended), `before-checkpoint` (an epoch's logs
/// and files written, the checkpoint not yet), `checkpoint-written` (its `.tmp` written, not
/// yet renamed), `committed` (the checkpoint in place).
#[doc(hidden)]
pub fn test_hook(point: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static HOOK: OnceLock<Option<(String, u64, PathBuf)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let hook = HOOK.get_or_init(|| {
        let v = std::env::var("WGPU_NAS_TEST_HOOK").ok()?;
        let mut parts = v.splitn(3, ':');
        let (p, n, f) = (parts.next()?, parts.next()?.parse().ok()?, parts.next()?);
        Some((p.to_string(), n, PathBuf::from(f)))
    });
    if let Some((p, n, file)) = hook {
        if p == point && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            let _ = std::fs::write(file, point);
            loop {
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        }
    }
}
