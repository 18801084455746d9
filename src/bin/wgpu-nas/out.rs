//! Standard output without panics: `println!` panics when stdout is a closed pipe or a full
//! disk; these return [`Error::Output`] instead (exit code 4, one line on stderr).

use std::io::Write;

use wgpu_nas::{Error, Result};

/// Writes `text` and a newline to stdout, flushed.
pub fn line(text: impl std::fmt::Display) -> Result<()> {
    text_raw(&format!("{text}\n"))
}

/// Writes `text` to stdout as it is, flushed.
pub fn text_raw(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| Error::Output(e.to_string()))
}

/// Writes a line to stderr; a closed stderr is ignored (there is nowhere left to say it).
pub fn warn(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
