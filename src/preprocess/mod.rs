//! Pure image-processing cores of the preprocessing stages: the feature channels, the crop box
//! (zero pruning) and average pooling. Nothing here touches the file system or prints.

pub mod align;
pub mod background;
pub mod blur;
pub mod crop;
pub mod features;
pub mod homography;
pub mod input;
pub mod keypoints;
pub mod photometric;
pub mod pool;
pub mod ssim;

// The channel list is part of the configuration and of make_input's metadata, so the type lives
// at the bottom of the crate; feature code names it from here.
pub use crate::types::Channel;
