//! The one place where the binaries pick a concrete Burn backend. Everything else is generic;
//! training wraps the chosen backend in `Autodiff` itself.

use std::fmt;

use alexnet_model::AlexNetBackend;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// A Burn backend (cargo features `flex`, `ndarray`, `wgpu`, `cuda` compile them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Burn's fast CPU backend (the default: fastest CPU backend measured, see README).
    Flex,
    /// The ndarray CPU backend.
    Ndarray,
    /// wgpu: Vulkan, Metal, DX12 or WebGPU (lavapipe gives a software Vulkan device).
    Wgpu,
    /// CUDA.
    Cuda,
}

impl BackendKind {
    const ALL: [BackendKind; 4] = [Self::Flex, Self::Ndarray, Self::Wgpu, Self::Cuda];

    /// The name used by `--backend`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// The largest weight buffer this backend takes, for
    /// [`AlexNetConfig::max_param_bytes`](alexnet_model::AlexNetConfig::max_param_bytes):
    /// wgpu devices may bind only WebGPU's default 128 MiB, less than fc6's 151 MB.
    pub fn max_param_bytes(self) -> Option<usize> {
        match self {
            Self::Wgpu => Some(alexnet_model::config::WEBGPU_MAX_BINDING_BYTES),
            _ => None,
        }
    }

    /// Whether the backend runs on the CPU (one device, so no `--devices` list).
    pub fn is_cpu(self) -> bool {
        matches!(self, Self::Flex | Self::Ndarray)
    }

    /// Checks a `--devices` list against the backend: CPU backends have the one device 0.
    pub fn check_devices(self, indices: &[usize]) -> Result<()> {
        if self.is_cpu() && indices != [0] {
            bail!(
                "--devices {indices:?}: the {self} backend has one device (the CPU, index 0); data-parallel training needs --backend wgpu or cuda"
            );
        }
        Ok(())
    }

    fn compiled(self) -> bool {
        match self {
            Self::Flex => cfg!(feature = "flex"),
            Self::Ndarray => cfg!(feature = "ndarray"),
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled into this binary, default first.
    pub fn available() -> Vec<BackendKind> {
        Self::ALL.into_iter().filter(|b| b.compiled()).collect()
    }

    /// Parses `--backend`, accepting only compiled backends.
    pub fn parse(name: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|b| b.name() == name) {
            Some(kind) => kind.ensure_compiled(),
            None => bail!(
                "unknown backend `{name}`; available: {}",
                Self::available_names()
            ),
        }
    }

    /// `self`, or an error when this binary was built without it (a configuration file may
    /// name any backend).
    pub fn ensure_compiled(self) -> Result<Self> {
        if !self.compiled() {
            bail!(
                "backend `{self}` is not compiled into this binary (rebuild with --features {self}); available: {}",
                Self::available_names()
            );
        }
        Ok(self)
    }

    fn available_names() -> String {
        let names: Vec<&str> = Self::available().iter().map(|b| b.name()).collect();
        names.join(", ")
    }

    /// The first compiled backend in the order flex, ndarray, wgpu, cuda.
    pub fn default_kind() -> Result<Self> {
        match Self::available().first() {
            Some(kind) => Ok(*kind),
            None => {
                bail!("no backend compiled in: build with --features flex, ndarray, wgpu or cuda")
            }
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Work that runs on any backend: implemented once, generically, by the caller.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs on backend `B`'s default device.
    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<Self::Output>;
}

/// Device `index` of backend `B`, the way Burn numbers them (`DeviceId` type 0: wgpu's
/// `DiscreteGpu(index)`, CUDA's device `index`; CPU backends have only one).
pub fn device_by_index<B: burn::tensor::backend::Backend>(index: usize) -> B::Device {
    use burn::tensor::backend::{Device, DeviceId};
    B::Device::from_id(DeviceId::new(0, index as u16))
}

/// Runs `job` on the chosen backend: the only place concrete backend types are named.
pub fn dispatch<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output> {
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => run_on::<burn::backend::Flex, J>(kind, job),
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => run_on::<burn::backend::NdArray, J>(kind, job),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => run_on::<burn::backend::Wgpu, J>(kind, job),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => run_on::<burn::backend::Cuda, J>(kind, job),
        #[allow(unreachable_patterns)]
        other => bail!("backend `{other}` is not compiled into this binary"),
    }
}

/// Runs `job` on `B`'s default device, after checking that a GPU backend has a device (its
/// first operation would otherwise panic).
#[allow(dead_code)] // unused when no backend feature is enabled
fn run_on<B: AlexNetBackend, J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output> {
    let device = B::Device::default();
    if !kind.is_cpu() {
        check_device::<B>(kind, &device, None)?;
    }
    job.run::<B>(device)
}

/// Checks that `device` of backend `B` can run (one tiny operation, any panic caught and not
/// printed): otherwise one line naming the backend (and `index`, a `--devices` entry) and
/// what to install, e.g. "--backend wgpu: no usable device (…); install a GPU driver or …".
pub fn check_device<B: burn::tensor::backend::Backend>(
    kind: BackendKind,
    device: &B::Device,
    index: Option<usize>,
) -> Result<()> {
    alexnet_model::device::probe::<B>(device).map_err(|e| {
        let hint = match kind {
            BackendKind::Wgpu => {
                "install a GPU driver or, without a GPU, a software Vulkan device \
                 (Debian: apt-get install mesa-vulkan-drivers), or use --backend flex"
            }
            BackendKind::Cuda => {
                "it needs an NVIDIA GPU with its driver and the CUDA toolkit, or use --backend flex"
            }
            _ => "the CPU backend failed on its first operation",
        };
        let (which, counts) = match (index, kind) {
            // Burn numbers wgpu's devices among discrete GPUs only; a software or integrated
            // adapter is reached without --devices.
            (Some(i), BackendKind::Wgpu) => (
                format!(" device {i}"),
                " (--devices counts discrete GPUs; without --devices the default adapter is used)",
            ),
            (Some(i), _) => (format!(" device {i}"), ""),
            (None, _) => (String::new(), ""),
        };
        anyhow::anyhow!("--backend {kind}{which}: no usable device ({e}); {hint}{counts}")
    })
}

/// Checks, before any work, that backend `kind` can run on its default device and on every
/// device of `devices` (`--devices`), so that a missing GPU is one line, not a panic, and
/// nothing (a run folder) is created first.
pub fn check(kind: BackendKind, devices: Option<&[usize]>) -> Result<()> {
    struct Probe<'a>(BackendKind, Option<&'a [usize]>);
    impl BackendJob for Probe<'_> {
        type Output = ();
        fn run<B: AlexNetBackend>(self, _default: B::Device) -> Result<()> {
            let Probe(kind, devices) = self;
            for &index in devices.unwrap_or_default() {
                if !kind.is_cpu() {
                    check_device::<B>(kind, &device_by_index::<B>(index), Some(index))?;
                }
            }
            Ok(())
        }
    }
    dispatch(kind, Probe(kind, devices))
}
