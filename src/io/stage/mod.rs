//! The stage contracts: the typed files one stage writes for the next, with their readers and
//! writers, so that every stage reads what the one before it wrote through one definition.
//!
//! * [`completion`]: `stage_complete.json`, written last into each output folder of remove_bg
//!   and align (re-exported here: [`StageRecord`], [`start`], [`finish`], [`completed_files`]);
//! * [`alignment`]: align's `alignment.csv` (one [`AlignmentRow`] per aligned image);
//! * [`preprocessing`]: make_input's `metadata/preprocessing.yaml`
//!   ([`PreprocessingMetadata`]), read by train, detect and validate.
//!
//! The model folder's `model_config.json` is defined with the model (`model::ModelSpec`),
//! since it is built from and rebuilds the model's own types. Image files (`*_no_bg.png`,
//! `*_aligned.png`) and `out.npz` are read and written by [`super::image`] and [`super::npz`].

pub mod alignment;
pub mod completion;
pub mod preprocessing;

pub use alignment::{AlignmentRow, read_alignment_csv, write_alignment_csv};
pub use completion::{
    Incomplete, RECORD_FILE, StageRecord, completed_files, finish, in_tree, read, start,
};
pub use preprocessing::{PreprocessingMetadata, PreprocessorSettings, RowSource};
