//! Logging to stderr and to the current stage's log file, cooperating with progress bars: every
//! stderr line is printed while the bars are suspended, so bars never tear log lines. `-q`
//! silences stderr and hides the bars; the log file is still written, since it is the record of
//! the run.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use log::{Level, LevelFilter, Log, Metadata, Record};

struct Logger {
    level: LevelFilter,
    quiet: bool,
    bars: MultiProgress,
    file: Mutex<Option<(PathBuf, File)>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the logger. `verbose` 0 logs info and above, 1 debug, 2+ trace. Calling it again
/// has no effect (tests run many commands in one process).
pub fn init(verbose: u8, quiet: bool) {
    let level = match verbose {
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let logger = LOGGER.get_or_init(|| Logger {
        level,
        quiet,
        bars: MultiProgress::with_draw_target(target),
        file: Mutex::new(None),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// Sends log lines to `path` (appended, parents created) from now on, until the next call.
/// Returns an error message when the file cannot be opened; logging to stderr goes on.
pub fn set_log_file(path: &Path) -> Result<(), String> {
    let Some(logger) = LOGGER.get() else {
        return Ok(());
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(mut slot) = logger.file.lock() {
        *slot = Some((path.to_path_buf(), f));
    }
    Ok(())
}

/// Stops writing to the log file.
pub fn close_log_file() {
    if let Some(logger) = LOGGER.get()
        && let Ok(mut slot) = logger.file.lock()
    {
        *slot = None;
    }
}

/// A progress bar for `len` items, drawn below the log lines; hidden with `-q` or when stderr is
/// not a terminal.
pub fn progress(len: u64, message: &str) -> ProgressBar {
    let bar = styled_bar(len, message);
    match LOGGER.get() {
        Some(l) if !l.quiet => l.bars.add(bar),
        _ => bar,
    }
}

/// The bar of [`progress`] before it is attached. It starts hidden: `ProgressBar::new` draws
/// to stderr, and setting the message drew a first frame ("0/20") straight onto the terminal,
/// behind the bar area's back, where nothing ever cleared it.
fn styled_bar(len: u64, message: &str) -> ProgressBar {
    // Cleared when dropped unfinished (a stage that fails), instead of left frozen on screen.
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
        .with_finish(indicatif::ProgressFinish::AndClear);
    // The whole message (type names are not cut), and the rate rounded to what a person reads.
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {rate} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let r = s.per_sec();
                let _ = if r >= 10.0 {
                    write!(w, "{r:.0}/s")
                } else {
                    write!(w, "{r:.1}/s")
                };
            },
        )
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.to_string());
    bar
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = record.args().to_string();
        if let Ok(mut slot) = self.file.lock()
            && let Some((_, f)) = slot.as_mut()
        {
            let _ = writeln!(f, "{} {:<5} {msg}", utc_now(), record.level());
        }
        if !self.quiet {
            let prefix = match record.level() {
                Level::Error => "error: ",
                Level::Warn => "warning: ",
                _ => "",
            };
            self.bars.suspend(|| eprintln!("{prefix}{msg}"));
        }
    }

    fn flush(&self) {
        if let Ok(mut slot) = self.file.lock()
            && let Some((_, f)) = slot.as_mut()
        {
            let _ = f.flush();
        }
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (no time-zone database needed).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_utc(secs)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_798_761_599), "2026-12-31T23:59:59Z");
    }
}
