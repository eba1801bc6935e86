//! Batch memory estimates: sizes a user sets (`--batch-size`, `--input-size`, `--crop`) are
//! checked against a limit before anything is allocated.
//!
//! The estimate is deliberately simple: the f32 values of one forward pass — the input and
//! every layer's output ([`LayerShapes`]) — times the images in the batch, times
//! [`WORKSPACE_FACTOR`] for the backend's scratch buffers (im2col, packed matrices), and
//! times [`TRAINING_FACTOR`] more when training (activations kept for the backward pass,
//! and their gradients). The model's own parameters are not counted. The limit is
//! [`memory_limit`]: half the physical memory, at most [`MAX_BATCH_BYTES`].
//!
//! ```
//! use alexnet_model::memory::check_batch;
//! use alexnet_model::AlexNetConfig;
//!
//! let config = AlexNetConfig::torchvision(1000);
//! assert!(check_batch(&config, 224, "--input-size", 32, false).is_ok());
//! let err = check_batch(&config, 224, "--input-size", 100_000, false).unwrap_err();
//! assert!(err.to_string().contains("--batch-size 100000:"), "{err}");
//! ```

use crate::config::AlexNetConfig;
use crate::error::AlexNetError;
use crate::files::format_bytes;
use crate::layers::LayerShapes;

/// The most a batch's estimated activations may take: 8 GiB (or half the physical memory,
/// where that is less: [`memory_limit`]). torchvision's network at 224×224 needs about 6 MB
/// per image by this estimate, so 32 to 1,000 images per batch pass.
pub const MAX_BATCH_BYTES: u64 = 8 << 30;

/// The estimate's allowance for a backend's scratch buffers: 2 × the activations.
pub const WORKSPACE_FACTOR: u64 = 2;

/// Training keeps every activation for the backward pass and computes a gradient of each:
/// 3 × the inference estimate.
pub const TRAINING_FACTOR: u64 = 3;

/// The limit batches are checked against: [`MAX_BATCH_BYTES`], or half the physical memory
/// where the system says (Linux's `/proc/meminfo`) and that is less.
pub fn memory_limit() -> u64 {
    physical_memory()
        .map(|total| (total / 2).min(MAX_BATCH_BYTES))
        .unwrap_or(MAX_BATCH_BYTES)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The estimated bytes of one `side`×`side` image through the network (see the module
/// documentation), or the error [`LayerShapes::compute`] gives for a side that does not fit.
/// Saturates instead of overflowing.
pub fn bytes_per_image(
    config: &AlexNetConfig,
    side: usize,
    training: bool,
) -> Result<u128, AlexNetError> {
    let (input, factor) = input_bytes(side, training);
    // A side whose input alone is over any limit is refused before the layer walk.
    if input.saturating_mul(factor) > u64::MAX as u128 {
        return Ok(input.saturating_mul(factor));
    }
    let shapes = LayerShapes::compute(config, side)?;
    let outputs: u128 = shapes
        .layers
        .iter()
        .map(|l| l.shape.iter().map(|&d| d as u128).product::<u128>())
        .sum();
    Ok((input + outputs * 4) * factor)
}

/// The f32 bytes of one `side`×`side` RGB input, and the estimate's factor.
fn input_bytes(side: usize, training: bool) -> (u128, u128) {
    let side = side as u128;
    let input = side.saturating_mul(side).saturating_mul(12);
    let factor = WORKSPACE_FACTOR as u128 * if training { TRAINING_FACTOR as u128 } else { 1 };
    (input, factor)
}

/// Refuses a batch of `batch` images of `side`×`side` whose estimate is over
/// [`memory_limit`]. When one image alone is over it, the error names `side_flag` (the flag
/// that set the side: `--input-size`, `--crop`) and its value; otherwise `--batch-size`.
/// `batch` counts images; [`check_views`] counts each image's views (ten-crop).
pub fn check_batch(
    config: &AlexNetConfig,
    side: usize,
    side_flag: &str,
    batch: usize,
    training: bool,
) -> Result<(), AlexNetError> {
    check_views(config, side, side_flag, batch, 1, training)
}

/// [`check_batch`] for `batch` images of `views` views each (`--ten-crop`: 10), all in one
/// forward pass.
pub fn check_views(
    config: &AlexNetConfig,
    side: usize,
    side_flag: &str,
    batch: usize,
    views: usize,
    training: bool,
) -> Result<(), AlexNetError> {
    let limit = memory_limit();
    let what = if training {
        "a training step"
    } else {
        "a forward pass"
    };
    let (input, factor) = input_bytes(side, training);
    // The input alone first: a side too large for any network is refused before the layer
    // walk (whose error would only say it does not fit).
    let one = if input.saturating_mul(factor) > limit as u128 {
        input.saturating_mul(factor)
    } else {
        bytes_per_image(config, side, training)?
    };
    if one > limit as u128 {
        return Err(AlexNetError::InvalidConfig(format!(
            "{side_flag} {side}: {what} on one {side}×{side} image needs about {}, over the \
             limit of {}",
            format_bytes(one.min(u64::MAX as u128) as u64),
            format_bytes(limit)
        )));
    }
    let views = views.max(1) as u128;
    let all = one.saturating_mul(views).saturating_mul(batch as u128);
    if all > limit as u128 {
        let per_view = if views > 1 {
            format!(" ({views} views each)")
        } else {
            String::new()
        };
        return Err(AlexNetError::InvalidConfig(format!(
            "--batch-size {batch}: {what} on {batch} images{per_view} of {side}×{side} needs \
             about {}, over the limit of {} (at most {} images fit)",
            format_bytes(all.min(u64::MAX as u128) as u64),
            format_bytes(limit),
            limit as u128 / (one * views)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_count_input_and_every_layer() {
        let config = AlexNetConfig::torchvision(1000);
        // 150,528 input values + 595,624 layer outputs (conv1 193,600 … fc8 1,000), f32, ×2.
        let one = bytes_per_image(&config, 224, false).unwrap();
        assert!((5_000_000..7_000_000).contains(&one), "{one}");
        assert_eq!(bytes_per_image(&config, 224, true).unwrap(), 3 * one);
    }

    #[test]
    fn huge_sizes_name_the_flag_and_the_limit() {
        let config = AlexNetConfig::torchvision(1000);
        assert!(check_batch(&config, 224, "--input-size", 64, true).is_ok());
        let err = check_batch(&config, 100_000, "--input-size", 1, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--input-size 100000: a forward pass on one"),
            "{err}"
        );
        assert!(err.contains("over the limit of"), "{err}");
        let err = check_batch(&config, 224, "--crop", 100_000, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--batch-size 100000: a forward pass on 100000 images"),
            "{err}"
        );
        // Absurd sides saturate instead of overflowing.
        let err = check_batch(&config, usize::MAX, "--input-size", usize::MAX, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--input-size"), "{err}");
    }
}
