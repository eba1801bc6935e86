//! Whether a backend's device can run at all, asked without crashing.
//!
//! Some backends panic on first use when their device is missing (burn-wgpu with no Vulkan,
//! Metal or DX12 adapter). [`probe`] runs one tiny operation and turns such a panic into an
//! error, so a command line can say what to install and a test can skip with a notice.

use std::panic::{catch_unwind, set_hook, take_hook, AssertUnwindSafe};

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Runs one element-wise operation on `device`: `Err` with the backend's panic message when
/// the device cannot run anything. The panic is not printed.
pub fn probe<B: Backend>(device: &B::Device) -> Result<(), String> {
    let hook = take_hook();
    set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        (Tensor::<B, 1>::ones([1], device) + 1.0).into_data()
    }));
    set_hook(hook);
    outcome.map(|_| ()).map_err(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the backend failed on its first operation");
        text.lines().next().unwrap_or_default().to_string()
    })
}
