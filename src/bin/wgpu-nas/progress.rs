//! One progress bar per run (indicatif) over all its steps: position, ETA and the latest loss
//! and accuracy. Hidden with `--quiet` and `--json` (scripts read stdout), and by indicatif
//! itself when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    /// Set once a progress line could not be written (a closed pipe): the run goes on without
    /// them, and the final result's write reports the error.
    stdout_failed: std::cell::Cell<bool>,
}

impl Progress {
    /// A bar over `total` steps, `done` of them already behind (a resumed run).
    pub fn new(total: u64, done: u64, visible: bool) -> Progress {
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        // The template is a constant, so it always parses; the fallback keeps errors out anyway.
        let style = ProgressStyle::with_template(
            // A fixed bar and a message cut to the terminal's width: a line that wraps in an
            // 80-column terminal is redrawn as two and leaves debris.
            "{elapsed:>4} [{bar:24.cyan/blue}] {pos}/{len} ETA {eta:>4}  {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_position(done);
        // Metrics arrive every few steps; the redraw keeps elapsed time and ETA moving between.
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
        Progress { bar, stdout_failed: std::cell::Cell::new(false) }
    }

    /// Steps `done` so far, with the message (e.g. "epoch 1  loss 1.23  acc 45.6%").
    pub fn update(&self, done: u64, msg: String) {
        self.bar.set_position(done);
        self.bar.set_message(msg);
    }

    /// Prints a line on stdout without tearing the bar (it is redrawn below the line). A line
    /// that cannot be written (stdout closed or full) does not stop the run: later lines are
    /// skipped.
    pub fn println(&self, line: &str) {
        if !self.stdout_failed.get() {
            let failed = self.bar.suspend(|| crate::out::line(line).is_err());
            self.stdout_failed.set(failed);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
