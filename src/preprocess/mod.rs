//! Pure image-processing cores of the preprocessing stages: the feature channels, the crop box
//! (zero pruning) and average pooling. Nothing here touches the file system or prints.

pub mod channel;
pub mod crop;
pub mod features;
pub mod input;
pub mod pool;

pub use channel::Channel;
