//! pixal — PIXel-based Anomaly Locator.
//!
//! A Rust successor to the Python PIXAL. Data flows one way through stages, each of which reads
//! only what the stage before it wrote:
//!
//! ```text
//! photos ──remove_bg──▶ RGBA cut-outs ──align──▶ aligned images + homographies
//!        ──make_input──▶ out.npz + metadata ──train──▶ model dir
//! new photos ──(same preprocessing, stored crop/reference)──▶ npz ──detect──▶ anomaly maps,
//!        scores, verdicts ──report──▶ PNG figures, overlays on the original photo, summary
//! ```
//!
//! Every stage has a pure core (in [`preprocess`], plain data in and out) and a thin wrapper in
//! [`commands`] that knows folders, progress bars and per-image failures. The configuration is
//! read once by [`config`] from the original's `parameters.yaml` and `paths.yaml`. The files
//! between stages are typed in [`io::stage`]; values that settings and stages share sit at the
//! bottom, in [`types`]. Imports point one way (README, "Code layout"; `tests/layering.rs`).

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod detect;
pub mod io;
pub mod logging;
pub mod model;
pub mod preprocess;
pub mod report;
pub mod rng;
pub mod simd;
pub mod types;

/// The version of this tool, recorded in every metadata file it writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
