//! A progress bar on stderr for long scans (only on a terminal).

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    base: std::cell::Cell<u64>,
}

impl Progress {
    pub fn new(enabled: bool, total: u64) -> Progress {
        let bar = enabled.then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        Progress {
            bar,
            base: std::cell::Cell::new(0),
        }
    }

    /// Position within the current file; call [`Progress::next_file`] between files.
    pub fn set(&self, in_file: u64) {
        if let Some(b) = &self.bar {
            b.set_position(self.base.get() + in_file);
        }
    }

    pub fn next_file(&self, file_len: u64) {
        self.base.set(self.base.get() + file_len);
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
