//! The one place where this binary picks a concrete Burn backend. Everything else is generic.

use std::fmt;

use anyhow::{bail, Result};

/// A backend compiled into this binary (cargo features `flex`, `ndarray`, `wgpu`, `cuda`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        let names = || {
            Self::available()
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match Self::ALL.into_iter().find(|b| b.name() == name) {
            Some(kind) if kind.compiled() => Ok(kind),
            Some(_) => bail!(
                "backend `{name}` is not compiled into this binary (rebuild with --features {name}); available: {}",
                names()
            ),
            None => bail!("unknown backend `{name}`; available: {}", names()),
        }
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
    fn run<B: burn::tensor::backend::Backend>(self, device: B::Device) -> Result<Self::Output>;
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
        BackendKind::Flex => job.run::<burn::backend::Flex>(Default::default()),
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => job.run::<burn::backend::NdArray>(Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => job.run::<burn::backend::Wgpu>(Default::default()),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => job.run::<burn::backend::Cuda>(Default::default()),
        #[allow(unreachable_patterns)]
        other => bail!("backend `{other}` is not compiled into this binary"),
    }
}
