//! A fit's progress on the terminal and in the log: one progress bar per trained network, a
//! debug line per epoch, and checkpoints of the deployed network's best weights.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::ProgressBar;

use crate::io::atomic;
use crate::model::train::EpochRecord;
use crate::model::{FitProgress, FoldStart, ModelError};

/// Seconds between two best-weights checkpoints during training: improving epochs in between
/// only mark the checkpoint stale, so a fast fit does not spend its time writing hundreds of
/// megabytes per epoch (the final best weights are always written at the end).
pub const CHECKPOINT_INTERVAL_S: f64 = 30.0;

/// Shows a fit's progress and writes its checkpoints to `checkpoint`.
pub(super) struct BarProgress {
    bar: Option<ProgressBar>,
    checkpoint: PathBuf,
    last_write: Option<Instant>,
}

impl BarProgress {
    /// Progress that checkpoints the deployed network's best weights to `checkpoint`.
    pub(super) fn new(checkpoint: PathBuf) -> BarProgress {
        BarProgress {
            bar: None,
            checkpoint,
            last_write: None,
        }
    }
}

impl FitProgress for BarProgress {
    fn fold_started(&mut self, f: &FoldStart) {
        log::info!(
            "training {} on {}: {} train / {} validation images, {} inputs ({}), {} weights, {} epochs max",
            f.label,
            f.device,
            f.n_train,
            f.n_val,
            f.inputs,
            if f.standardized {
                "standardised"
            } else {
                "scaled"
            },
            f.num_params,
            f.max_epochs
        );
        let bar = crate::logging::progress(f.max_epochs as u64, &f.label);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix} epoch {pos}/{len} [{bar:24}] {msg} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(f.label.clone());
        self.bar = Some(bar);
    }

    fn epoch(&mut self, r: &EpochRecord) {
        if let Some(bar) = &self.bar {
            bar.set_position(r.epoch as u64 + 1);
            bar.set_message(format!("loss {:.4e} val_loss {:.4e}", r.loss, r.val_loss));
        }
        log::debug!(
            "epoch {}: loss {:.6e} val_loss {:.6e} mse {:.6e} val_mse {:.6e} ({:.2} s)",
            r.epoch + 1,
            r.loss,
            r.val_loss,
            r.mse,
            r.val_mse,
            r.seconds
        );
    }

    // Checkpoint the best weights when they improve, at most every CHECKPOINT_INTERVAL_S
    // seconds.
    fn checkpoint_due(&mut self) -> bool {
        self.last_write
            .is_none_or(|t| t.elapsed().as_secs_f64() >= CHECKPOINT_INTERVAL_S)
    }

    fn checkpoint(&mut self, record: &[u8]) -> Result<(), ModelError> {
        atomic::write_bytes(&self.checkpoint, record)?;
        self.last_write = Some(Instant::now());
        Ok(())
    }

    fn fold_finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
