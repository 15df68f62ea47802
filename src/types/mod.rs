//! Small value types that several layers share: the feature [`Channel`]s, the [`CropBox`], and
//! the vocabularies of the background-removal and detection settings. They sit at the bottom
//! of the crate so that the configuration ([`crate::config`]) and the stage files
//! ([`crate::io`]) can name them without depending on the stages that act on them
//! (`preprocess`, `detect`), which re-export them where their users expect them.
//!
//! Nothing here imports another module of pixal (a test, `tests/layering.rs`, checks it).

pub mod background;
pub mod channel;
pub mod crop;
pub mod scoring;

pub use background::{Cutout, Method};
pub use channel::Channel;
pub use crop::CropBox;
pub use scoring::{Scoring, ThresholdMode};
