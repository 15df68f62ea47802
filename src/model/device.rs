//! The one place that picks burn's backend and device. The CPU backend is burn's `flex` (pure
//! Rust, SIMD, multi-threaded matmul); CUDA is compiled in only with the `cuda` cargo feature
//! and used when `model_training.device` asks for it (`cuda`), or when it is `auto` and a GPU
//! is actually usable. Code that trains is generic over the backend: it implements
//! [`BackendJob`] and [`run`] calls it with the chosen backend type.

use burn::backend::{Autodiff, Flex};

use super::ModelError;
use super::dense::TrainBackend;
use crate::config::resolved::TrainDevice;

/// The CPU backend used for training (with autodiff) ...
pub type CpuTrainBackend = Autodiff<Flex>;
/// ... and for inference.
pub type CpuBackend = Flex;

/// A backend chosen for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    /// burn's flex CPU backend.
    Cpu,
    /// CUDA device 0 (only in builds with the `cuda` feature).
    Cuda,
}

impl Selected {
    /// A short description for logs and metadata.
    pub fn describe(&self) -> String {
        match self {
            Selected::Cpu => format!(
                "cpu (burn flex backend, {} thread(s))",
                rayon::current_num_threads()
            ),
            Selected::Cuda => "cuda:0 (burn cuda backend)".to_string(),
        }
    }

    /// Whether tensors live in host memory (the optimizer then updates them in place).
    pub fn is_host(&self) -> bool {
        matches!(self, Selected::Cpu)
    }
}

/// Whether this build has the CUDA backend.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// Picks the backend for `requested`. `cuda` fails clearly when the build lacks the feature or
/// no usable GPU is found; `auto` falls back to the CPU.
pub fn select(requested: TrainDevice) -> Result<Selected, ModelError> {
    match requested {
        TrainDevice::Cpu => Ok(Selected::Cpu),
        TrainDevice::Cuda => {
            if !CUDA_BUILT {
                return Err(ModelError::Device(
                    "model_training.device is `cuda` but this pixal was built without CUDA; rebuild with `cargo build --release --features cuda` (needs the NVIDIA driver at run time), or set device: cpu".into(),
                ));
            }
            probe_cuda().map(|()| Selected::Cuda).map_err(|e| {
                ModelError::Device(format!(
                    "model_training.device is `cuda` but no CUDA device can be used: {e}"
                ))
            })
        }
        TrainDevice::Auto => {
            if CUDA_BUILT {
                match probe_cuda() {
                    Ok(()) => return Ok(Selected::Cuda),
                    Err(e) => log::info!("device auto: using the CPU ({e})"),
                }
            }
            Ok(Selected::Cpu)
        }
    }
}

/// Folders where the CUDA driver library is usually installed.
const DRIVER_DIRS: [&str; 6] = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/cuda/lib64",
    "/usr/lib/wsl/lib",
    "/usr/local/nvidia/lib64",
];

/// Whether the CUDA driver library can be found (burn's CUDA runtime loads it dynamically and
/// panics when it is missing, so pixal looks before it leaps).
pub fn driver_library_present() -> bool {
    let mut dirs: Vec<std::path::PathBuf> = DRIVER_DIRS.iter().map(Into::into).collect();
    if let Some(extra) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&extra));
    }
    dirs.iter()
        .any(|d| d.join("libcuda.so.1").exists() || d.join("libcuda.so").exists())
}

/// Checks that a CUDA device is usable: the driver library exists and a tiny computation on
/// device 0 succeeds. burn's CUDA runtime panics when it cannot start (driver present but no
/// GPU, a driver too old, ...): the panic is caught, and the default panic message is held
/// back during the probe so the user sees one error, with the runtime's reason in it, instead
/// of a "thread panicked" report that reads like a crash of pixal.
#[cfg(feature = "cuda")]
pub fn probe_cuda() -> Result<(), String> {
    if !driver_library_present() {
        return Err(
            "no CUDA driver (libcuda.so.1) found; is an NVIDIA GPU and its driver installed?"
                .into(),
        );
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(|| {
        use burn::tensor::Tensor;
        let dev = burn::backend::cuda::CudaDevice::new(0);
        let t = Tensor::<burn::backend::Cuda, 1>::ones([4], &dev);
        t.sum().into_scalar()
    });
    std::panic::set_hook(default_hook);
    match r {
        Ok(v) if (v - 4.0).abs() < 1e-6 => Ok(()),
        Ok(v) => Err(format!("CUDA device 0 computed a wrong value ({v})")),
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("no reason given");
            Err(format!(
                "the CUDA runtime failed to start on device 0: {reason}; set model_training.device: cpu (or auto) to train on the CPU"
            ))
        }
    }
}

/// Without the `cuda` feature there is nothing to probe.
#[cfg(not(feature = "cuda"))]
pub fn probe_cuda() -> Result<(), String> {
    Err("this pixal was built without CUDA".into())
}

/// Makes glibc keep large freed buffers for reuse instead of returning them to the system.
///
/// Each training step allocates and frees several buffers of hundreds of megabytes (gradients,
/// layer outputs) for the original's model. glibc serves every allocation above 32 MiB with a
/// fresh `mmap`, so each step paid for zeroing and faulting in every page again: about 40% of a
/// step on the benchmark. With mmap off and trimming off, freed blocks go back to the heap and
/// the next step reuses them. Process-wide and never undone, which suits a CLI run; the cost is
/// that the peak heap is not given back to the system before exit.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; both values are valid.
            let ok = unsafe {
                libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                    && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
            };
            if !ok {
                log::debug!("mallopt refused the allocator settings; training is slower");
            }
        });
    }
}

/// Work that runs on whichever backend was selected.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job with backend `B` on `device`; `host` says whether tensors live in host
    /// memory.
    fn run<B: TrainBackend>(self, device: B::Device, host: bool) -> Self::Output;
}

/// Runs `job` on the selected backend.
pub fn run<J: BackendJob>(selected: Selected, job: J) -> J::Output {
    match selected {
        #[cfg(feature = "cuda")]
        Selected::Cuda => {
            job.run::<Autodiff<burn::backend::Cuda>>(burn::backend::cuda::CudaDevice::new(0), false)
        }
        _ => {
            keep_freed_memory();
            job.run::<CpuTrainBackend>(Default::default(), true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_auto_select_the_cpu_without_a_gpu() {
        assert_eq!(select(TrainDevice::Cpu).unwrap(), Selected::Cpu);
        if !CUDA_BUILT {
            assert_eq!(select(TrainDevice::Auto).unwrap(), Selected::Cpu);
            let e = select(TrainDevice::Cuda).unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }

    /// A CUDA build on a machine without the driver library: `cuda` is an error naming the
    /// key, `auto` the CPU, and neither reaches burn's runtime (which would panic).
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_build_without_a_driver_errs_instead_of_panicking() {
        if driver_library_present() {
            eprintln!("skipped: a CUDA driver is installed here");
            return;
        }
        let e = select(TrainDevice::Cuda).unwrap_err().to_string();
        assert!(
            e.contains("model_training.device") && e.contains("driver"),
            "{e}"
        );
        assert_eq!(select(TrainDevice::Auto).unwrap(), Selected::Cpu);
    }
}
