//! Whether a backend's device can run at all, asked without crashing.
//!
//! Some backends panic on first use when their device is missing (burn-wgpu with no Vulkan,
//! Metal or DX12 adapter). [`probe`] runs one tiny operation and turns such a panic into an
//! error, so a command line can say what to install and a test can skip with a notice.

use std::panic::{catch_unwind, set_hook, take_hook, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Runs one element-wise operation on `device`: `Err` with the first panic message raised
/// meanwhile (on any thread: burn-wgpu starts its device on a thread of its own) when the
/// device cannot run anything. No panic is printed.
pub fn probe<B: Backend>(device: &B::Device) -> Result<(), String> {
    let first = Arc::new(Mutex::new(None::<String>));
    let sink = first.clone();
    let hook = take_hook();
    set_hook(Box::new(move |info| {
        let mut first = sink.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(info.payload_as_str().unwrap_or("a panic").to_string());
        }
    }));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        (Tensor::<B, 1>::ones([1], device) + 1.0).into_data()
    }));
    set_hook(hook);
    outcome.map(|_| ()).map_err(|_| {
        let text = first.lock().unwrap_or_else(|e| e.into_inner()).take();
        let text = text.unwrap_or_else(|| "the backend failed on its first operation".into());
        // The first sentence: backends append debug dumps after ": ".
        let line = text.lines().next().unwrap_or_default();
        line.split(": ").next().unwrap_or(line).to_string()
    })
}
