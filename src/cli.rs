//! The command line: clap derive only, no logic. Subcommands and their names are the
//! original's (`remove_bg`, `make_input`, ...; the hyphenated spellings work too).
//!
//! Short flags mean one thing everywhere: `-i` the input, `-o` where to write, `-t` the image
//! type, `-m` masks, `-v`/`-q` log detail. Every subcommand's long help (`--help`) ends with an
//! example and where its outputs go; `tests/cli.rs` checks both.

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
or configuration error (or a stage that is not built yet), 3 an anomalous photo with \
--fail-on-anomaly, 101 an internal error (a bug).",
    after_long_help = "Quickstart (a folder of photos with one sub-folder per part type):\n  \
pixal init photos/            # writes ./configs/ for the component \"photos\"\n  \
pixal preprocess -i photos/   # -> out/photos/<type>/out.npz\n  \
pixal train                   # -> out/photos/<type>/model/\n  \
pixal validate -i new_photos/ # -> validate/photos/index.html\n\n\
`pixal <subcommand> --help` shows each stage's example and outputs."
)]
pub struct Cli {
    /// Folder holding parameters.yaml and paths.yaml (`pixal init` creates one).
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
    /// Write a configs/ folder for a component of photos (start here).
    #[command(
        long_about = "Write a configuration folder (parameters.yaml and paths.yaml, the shipped \
defaults) for a component: the component name in paths.yaml is taken from the photo folder's \
name, so outputs land in out/<component>/ and validate/<component>/. Both files start \
with a comment listing the keys labs usually change. Existing files are kept unless --force.",
        after_long_help = "Example:\n  pixal init path/to/R0_Flex_F1        # component \"R0_Flex_F1\", writes ./configs/\n  \
pixal --config lab/configs init photos/\n\n\
Outputs: <--config DIR>/parameters.yaml and paths.yaml (default ./configs/)."
    )]
    Init(InitArgs),
    /// Run all preprocessing steps on input images (remove_bg -> align -> make_input).
    #[command(
        after_long_help = "Example:\n  pixal preprocess -i path/to/component   # one sub-folder of photos per type\n\n\
Outputs: out/<component>/<type>/ (paths.yaml): preprocessed_images/background_removed/, \
preprocessed_images/aligned_images/ (when apply_alignment), out.npz, metadata/, logs/, \
figures/aligned_metrics/."
    )]
    Preprocess(InputArgs),
    /// Remove the background from images.
    #[command(
        name = "remove_bg",
        alias = "remove-bg",
        after_long_help = "Example:\n  pixal remove_bg -i path/to/component        # RGBA cut-outs\n  \
pixal remove_bg -i path/to/component -m     # 8-bit masks instead\n\n\
Outputs: out/<component>/<type>/preprocessed_images/background_removed/<type>_<index>_no_bg.png \
(masks: preprocessed_images/masks/<..>_mask.png)."
    )]
    RemoveBg(RemoveBgArgs),
    /// Align images to a reference image.
    #[command(after_long_help = "Example:\n  pixal align -i path/to/component\n  \
pixal align                    # each type's background_removed folder under out/<component>/\n\n\
Outputs: out/<component>/<type>/preprocessed_images/aligned_images/ (images + alignment.csv) and \
figures/aligned_metrics/ (save_metrics, draw_matches, save_overlays).")]
    Align(InputArgs),
    /// Turn images into the ML input (out.npz + metadata).
    #[command(
        name = "make_input",
        alias = "make-input",
        after_long_help = "Example:\n  pixal make_input -i path/to/component\n  \
pixal make_input               # the aligned (or background-removed) images under out/<component>/\n\n\
Outputs: out/<component>/<type>/out.npz, metadata/preprocessing.yaml, \
preprocessed_images/crop_preview.png, logs/preprocessing.log."
    )]
    MakeInput(InputArgs),
    /// Train the model(s) of each type from make_input's out.npz.
    #[command(
        after_long_help = "Example:\n  pixal train                    # every out/<component>/<type>/out.npz\n  \
pixal train -i out/R0_Flex_F1  # a folder holding <type>/out.npz (or one out.npz)\n\n\
Outputs: out/<component>/<type>/model/ (weights, model_config.json, loss_history.json, \
loss_plot.png, validation_error_maps.npy), metadata/, logs/."
    )]
    Train(TrainArgs),
    /// Run validation (preprocess + detect) on new images.
    #[command(
        after_long_help = "Example:\n  pixal validate -i new_photos/                  # one sub-folder of photos per type\n  \
pixal validate -i photo.jpg -t F1_Front        # one photo\n  \
pixal validate -i new_photos/ --truth masks/   # with ground truth: metrics, wrong verdicts marked\n\n\
Outputs: validate/<component>/index.html (open this), and per type validate/<component>/<type>/: \
report.html, scores.csv, summary.json, anomaly_maps/, figures/."
    )]
    Validate(ValidateArgs),
    /// Run anomaly detection on preprocessed images.
    #[command(
        after_long_help = "Example:\n  pixal detect                             # validate/<component>/<type>/out.npz\n  \
pixal detect -i validate/R0_Flex_F1 --truth masks/\n\n\
Outputs: validate/<component>/index.html and per type report.html, scores.csv, summary.json, \
anomaly_maps/, figures/."
    )]
    Detect(DetectArgs),
    /// Generate a small synthetic component and run the pipeline on it.
    #[command(
        after_long_help = "Example:\n  pixal demo                     # in ./pixal-demo\n  \
pixal demo -o /tmp/demo --images 30\n\n\
Outputs: <DIR>/data/ (photos: train/, validate/, ground_truth/), <DIR>/configs/, <DIR>/out/, \
<DIR>/validate/ (open validate/demo_flex_validate/index.html)."
    )]
    Demo(DemoArgs),
    /// Show what pixal finds here: version, config, ONNX Runtime, rembg models, CUDA (exit 1
    /// when something the config asks for is missing).
    #[command(
        after_long_help = "Example:\n  pixal doctor                 # with ./configs\n  \
pixal --config lab/configs --json doctor\n\n\
Outputs: the report on stderr (with --json, a JSON summary with `details` on stdout); writes no files."
    )]
    Doctor,
    /// Print a shell completion script.
    #[command(
        after_long_help = "Example:\n  pixal completions bash > ~/.local/share/bash-completion/completions/pixal\n  \
pixal completions zsh > ~/.zfunc/_pixal\n  \
pixal completions fish > ~/.config/fish/completions/pixal.fish\n\n\
Outputs: the script, on stdout."
    )]
    Completions(CompletionsArgs),
    /// Write the man pages (generated from this command line's definitions).
    #[command(
        after_long_help = "Example:\n  pixal manpage | man -l -         # read it now\n  \
pixal manpage -o ~/.local/share/man/man1\n\n\
Outputs: pixal(1) on stdout; with -o DIR: DIR/pixal.1 and DIR/pixal-<subcommand>.1."
    )]
    Manpage(ManpageArgs),
}

/// Arguments of the stages that read an input folder.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Input folder: a component folder with one sub-folder per image type (or one folder of
    /// images). Defaults to the folder paths.yaml gives for this stage.
    #[arg(short, long, value_name = "DIR")]
    pub input: Option<PathBuf>,
}

/// Arguments of `train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// make_input's output: a component folder holding `<type>/out.npz`, or the folder of one
    /// out.npz (not a folder of images). Default: out/<component>/ from paths.yaml.
    #[arg(short, long, value_name = "DIR")]
    pub input: Option<PathBuf>,
}

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The component's photo folder (one sub-folder per image type); its name becomes the
    /// component name. Default: the current folder.
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite existing configuration files.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `manpage`.
#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Write pixal.1 and one page per subcommand into this folder instead of pixal.1 to stdout.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
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
    #[arg(short = 'm', long)]
    pub only_mask: bool,
}

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// New images: a component folder with one sub-folder per type, or one image file.
    #[arg(short, long, value_name = "PATH")]
    pub input: Option<PathBuf>,
    /// The image type, when the input is a single image file (or to validate one type only).
    #[arg(short = 't', long = "type", value_name = "NAME")]
    pub image_type: Option<String>,
    /// Ground-truth masks: `<stem>_mask.png` per defective image (in DIR, DIR/<type>/, or the
    /// MVTec layout DIR/<defect>/); images without a mask count as good.
    #[arg(long, value_name = "DIR")]
    pub truth: Option<PathBuf>,
    /// Exit with code 3 when any photo is anomalous (and nothing failed), for lab scripts.
    #[arg(long)]
    pub fail_on_anomaly: bool,
    /// Write this run's results into DIR (one sub-folder per type) instead of the validate
    /// folder of paths.yaml, so runs with different --output never touch each other's files.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
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
    /// Exit with code 3 when any photo is anomalous (and nothing failed), for lab scripts.
    #[arg(long)]
    pub fail_on_anomaly: bool,
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to create the demo (its images, configs and outputs).
    #[arg(short, long, value_name = "DIR", default_value = "pixal-demo")]
    pub output: PathBuf,
    /// Good training photos per type [default: 20].
    #[arg(long, alias = "images", value_name = "N")]
    pub train: Option<usize>,
    /// Good validation photos per type.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub good: usize,
    /// Defective validation photos per type (scratch, contamination, missing copper,
    /// discolouration, fibre in turn).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub defective: usize,
    /// Photo size, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", default_value = "480x270", value_parser = parse_size)]
    pub size: (u32, u32),
    /// How strongly the defects change the pixels, in (0, 1]: 1 is clear and realistic.
    #[arg(long, value_name = "F", value_parser = parse_contrast)]
    pub contrast: Option<f32>,
    /// The harder set: defects at contrast 0.35 and 20 training photos per type (unless
    /// --contrast / --train say otherwise).
    #[arg(long)]
    pub subtle: bool,
    /// Write the photos and ground truth under DIR/data and stop (for benchmarks).
    #[arg(long)]
    pub generate_only: bool,
    /// Use the older cartoon-like synthetic part instead of the real flex photo (kept for the
    /// pipeline test).
    #[arg(long, hide = true)]
    pub synthetic: bool,
    /// Seed of the generated images.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Parses `WIDTHxHEIGHT` (e.g. `960x540`).
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not WIDTHxHEIGHT (e.g. 960x540)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if !(64..=8192).contains(&w) || !(36..=8192).contains(&h) {
        return Err(format!("size {w}x{h} is outside 64x36 .. 8192x8192"));
    }
    Ok((w, h))
}

/// Parses a defect contrast in (0, 1].
fn parse_contrast(s: &str) -> Result<f32, String> {
    let c: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if c > 0.0 && c <= 1.0 {
        Ok(c)
    } else {
        Err(format!("contrast {s} is outside (0, 1]"))
    }
}
