//! The command line: clap derive only, no logic. Subcommands and their names are the
//! original's (`remove_bg`, `make_input`, ...; the hyphenated spellings work too).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// pixal — PIXel-based Anomaly Locator.
#[derive(Debug, Parser)]
#[command(
    name = "pixal",
    version,
    about = "PIXel-based Anomaly Locator: find the pixels of a photo that do not look like a good part",
    long_about = "PIXel-based Anomaly Locator. Preprocess photos of detector parts (background \
removal, alignment, feature channels), train an autoencoder per part type on good images, and \
locate anomalous pixels in new photos.\n\nExit codes: 0 all good, 1 some inputs failed, 2 usage \
or configuration error (or a stage that is not built yet)."
)]
pub struct Cli {
    /// Folder holding parameters.yaml and paths.yaml.
    #[arg(long, global = true, value_name = "DIR", default_value = "configs")]
    pub config: PathBuf,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No log lines or progress bars on stderr (the log file is still written).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print a machine-readable JSON summary of the run on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Worker threads for per-image parallelism (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// The stage to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The stages.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run all preprocessing steps on input images (remove_bg -> align -> make_input).
    Preprocess(InputArgs),
    /// Remove the background from images.
    #[command(name = "remove_bg", alias = "remove-bg")]
    RemoveBg(RemoveBgArgs),
    /// Align images to a reference image.
    Align(InputArgs),
    /// Turn images into the ML input (out.npz + metadata).
    #[command(name = "make_input", alias = "make-input")]
    MakeInput(InputArgs),
    /// Train autoencoder model(s).
    Train(InputArgs),
    /// Run validation (preprocess + detect) on new images.
    Validate(ValidateArgs),
    /// Run anomaly detection on preprocessed images.
    Detect(DetectArgs),
    /// Generate a small synthetic component and run the pipeline on it.
    Demo(DemoArgs),
    /// Show what pixal finds here: version, config, ONNX Runtime, rembg models, CUDA (exit 1
    /// when something the config asks for is missing).
    Doctor,
}

/// Arguments of the stages that read an input folder.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Input folder: a component folder with one sub-folder per image type (or one folder of
    /// images). Defaults to the folder paths.yaml gives for this stage.
    #[arg(short, long, value_name = "DIR")]
    pub input: Option<PathBuf>,
}

/// Arguments of `remove_bg`.
#[derive(Debug, Args)]
pub struct RemoveBgArgs {
    /// Input folder: a component folder with one sub-folder of photos per image type (or one
    /// folder of photos).
    #[arg(short, long, value_name = "DIR")]
    pub input: Option<PathBuf>,
    /// Write the masks (8-bit gray, `<name>_mask.png` in preprocessed_images/masks) instead of
    /// the RGBA cut-outs.
    #[arg(short = 'o', long)]
    pub only_mask: bool,
}

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// New images: a component folder with one sub-folder per type, or one image file.
    #[arg(short, long, value_name = "PATH")]
    pub input: Option<PathBuf>,
    /// The image type, when the input is a single image file.
    #[arg(long = "type", value_name = "NAME")]
    pub image_type: Option<String>,
    /// Ground-truth masks: `<stem>_mask.png` per defective image (in DIR, DIR/<type>/, or the
    /// MVTec layout DIR/<defect>/); images without a mask count as good.
    #[arg(long, value_name = "DIR")]
    pub truth: Option<PathBuf>,
}

/// Arguments of `detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// A validate component folder holding `<type>/out.npz` (default: from paths.yaml).
    #[arg(short, long, value_name = "DIR")]
    pub input: Option<PathBuf>,
    /// Ground-truth masks, as for `validate`.
    #[arg(long, value_name = "DIR")]
    pub truth: Option<PathBuf>,
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to create the demo (its images, configs and outputs).
    #[arg(short, long, value_name = "DIR", default_value = "pixal-demo")]
    pub output: PathBuf,
    /// Good training images per type.
    #[arg(long, default_value_t = 20)]
    pub images: usize,
    /// Seed of the generated images.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}
