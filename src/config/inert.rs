//! The keys of the original's `parameters.yaml` that pixal accepts but that have no effect here,
//! named when a file sets them, since its author expects an effect.

use super::raw::RawParameters;

/// Keys of the original that pixal accepts (so its files load) but that change nothing here,
/// each with its reason; a file that sets one to anything but the original's default gets a
/// message, since its author expects an effect. README lists them.
pub fn inert_settings(raw: &RawParameters) -> Vec<String> {
    let m = &raw.model_training;
    let d = crate::config::raw::RawModelTraining::default();
    let tf = "a TensorFlow switch of the original";
    let table: [(bool, &str, &str); 10] = [
        (
            m.enable_memory_growth != d.enable_memory_growth,
            "model_training.enable_memory_growth",
            tf,
        ),
        (
            m.tf_gpu_allocator != d.tf_gpu_allocator,
            "model_training.TF_GPU_ALLOCATOR",
            tf,
        ),
        (
            m.cpu_multi_threading != d.cpu_multi_threading,
            "model_training.CPU_MULTI_THREADING",
            tf,
        ),
        (
            m.hybrid_mode != d.hybrid_mode,
            "model_training.HYBRID_MODE",
            tf,
        ),
        (
            m.use_gradient_tape != d.use_gradient_tape,
            "model_training.use_gradient_tape",
            "pixal has one training loop",
        ),
        (
            m.available_cpu != d.available_cpu,
            "model_training.Available_CPU",
            "pixal uses every core; limit it with --threads N",
        ),
        (
            m.metric_accuracy != d.metric_accuracy,
            "model_training.metric_accuracy",
            "pixal records no accuracy metric (an autoencoder's outputs are not classes)",
        ),
        (
            m.model_file_extension != d.model_file_extension,
            "model_training.model_file_extension",
            "pixal writes <model_name>.mpk and .safetensors",
        ),
        (
            m.model_type.trim() == "pixel_stats" && m.device.trim() == "cuda",
            "model_training.device: cuda",
            "pixel_stats computes on the CPU (only the autoencoder uses a GPU)",
        ),
        (
            raw.plotting.plot_accuracy != crate::config::raw::RawPlotting::default().plot_accuracy,
            "plotting.plot_accuracy",
            "there is no accuracy to plot",
        ),
    ];
    table
        .iter()
        .filter(|(set, _, _)| *set)
        .map(|(_, key, why)| format!("{key} has no effect in pixal: {why}"))
        .collect()
}
