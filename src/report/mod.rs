//! Figures and reports: plots drawn with plotters into an in-memory buffer (text with the
//! embedded DejaVu Sans, so no system fonts are needed) and saved as PNG atomically, plus the
//! colour maps used by heat maps and overlays. Each plot function takes data and a path and does
//! no maths beyond laying the data out.

pub mod colormap;
pub mod html;
pub mod overlay;
pub mod plot;

use std::path::PathBuf;

/// Errors while drawing a figure.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed while drawing.
    #[error("{path}: cannot draw figure: {reason}")]
    Draw {
        /// The figure's file.
        path: PathBuf,
        /// What plotters said.
        reason: String,
    },
    /// The figure could not be saved.
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
}
