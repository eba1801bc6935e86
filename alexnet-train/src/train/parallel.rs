//! One training step's gradient, on one device or data-parallel on several (`--devices`).
//!
//! Data parallelism follows Burn's multi-device strategy with the optimizer on the main device
//! (`burn-train`'s `MultiDeviceOptim::OptimMainDevice`): each step, the model is forked onto
//! every device, each device runs forward and backward on its shard of the batch in its own
//! thread, the gradients are moved to the main device (the first) and summed with
//! [`GradientsAccumulator`], and the optimizer updates the main copy. One difference from
//! burn-train: each shard's mean loss is weighted by its share of the batch (`n_k / n`), so
//! the summed gradient *is* the whole batch's mean-loss gradient — the learning rate means
//! the same on any number of devices, and `--batch-size` stays the global batch.

use alexnet_model::{AlexNet, AlexNetAutodiffBackend};
use anyhow::{anyhow, Result};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use crate::data::loader::Batch;

/// What one step computed.
pub struct StepOutput {
    /// Gradient of the batch's mean cross-entropy, on the main device.
    pub grads: GradientsParams,
    /// The batch's mean cross-entropy.
    pub loss: f64,
    /// `[n, classes]` logits, row-major, in the batch's order.
    pub logits: Vec<f32>,
}

/// `[n, 3, s, s]` images and `[n]` labels of images `range` of `batch`, on `device`.
pub fn batch_tensors<B: burn::tensor::backend::Backend>(
    batch: &Batch,
    range: std::ops::Range<usize>,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
    let s = batch.side;
    let pixels = 3 * s * s;
    let n = range.len();
    let images = batch.images[range.start * pixels..range.end * pixels].to_vec();
    let images = Tensor::from_data(TensorData::new(images, [n, 3, s, s]), device);
    let labels: Vec<i64> = batch.labels[range].iter().map(|&l| l as i64).collect();
    let labels = Tensor::from_data(TensorData::new(labels, [n]), device);
    (images, labels)
}

/// Logits to the host as `f32`.
pub fn host_logits<B: burn::tensor::backend::Backend>(logits: Tensor<B, 2>) -> Result<Vec<f32>> {
    logits
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| anyhow!("cannot read logits: {e:?}"))
}

/// The shard of each device: contiguous, sizes differing by at most one, empty shards dropped.
fn shards(n: usize, devices: usize) -> Vec<(usize, std::ops::Range<usize>)> {
    let (base, extra) = (n / devices, n % devices);
    let mut start = 0;
    (0..devices)
        .filter_map(|k| {
            let len = base + usize::from(k < extra);
            let range = start..start + len;
            start += len;
            (len > 0).then_some((k, range))
        })
        .collect()
}

/// Forward and backward of `batch[range]` on `model` (already on its device); the loss is
/// scaled by `weight`. Returns the gradients (still on the model's device), the unscaled loss
/// and the logits.
fn shard_step<B: AlexNetAutodiffBackend>(
    model: &AlexNet<B>,
    batch: &Batch,
    range: std::ops::Range<usize>,
    weight: f64,
) -> Result<(GradientsParams, f64, Vec<f32>)> {
    let device = model.convs()[0].weight.device();
    let (x, y) = batch_tensors::<B>(batch, range, &device);
    let logits = model.try_forward(x)?;
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits.clone(), y);
    let value: f64 = loss.clone().into_scalar().elem();
    let loss = if weight == 1.0 { loss } else { loss * weight };
    let grads = GradientsParams::from_grads(loss.backward(), model);
    Ok((grads, value, host_logits(logits)?))
}

/// The gradient of `batch`'s mean cross-entropy for `model` (on `devices[0]`), computed on
/// `devices` in parallel (one thread per device beyond the first). A non-finite loss is
/// returned as is; the caller decides.
pub fn batch_gradients<B: AlexNetAutodiffBackend>(
    model: &AlexNet<B>,
    batch: &Batch,
    devices: &[B::Device],
) -> Result<StepOutput> {
    let n = batch.len();
    if devices.len() <= 1 {
        let (grads, loss, logits) = shard_step(model, batch, 0..n, 1.0)?;
        return Ok(StepOutput {
            grads,
            loss,
            logits,
        });
    }
    let main = &devices[0];
    let parts = shards(n, devices.len());
    let results: Vec<Result<(GradientsParams, f64, Vec<f32>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|(k, range)| {
                let replica = model.clone().fork(&devices[*k]);
                let range = range.clone();
                let weight = range.len() as f64 / n as f64;
                scope.spawn(move || {
                    let (grads, loss, logits) = shard_step(&replica, batch, range, weight)?;
                    Ok((grads.to_device(main, &replica), loss * weight, logits))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a device worker thread panicked")))
            })
            .collect()
    });
    let mut accumulator = GradientsAccumulator::new();
    let mut loss = 0.0;
    let mut logits = Vec::new();
    for result in results {
        let (grads, part_loss, part_logits) = result?;
        accumulator.accumulate(model, grads);
        loss += part_loss;
        logits.extend(part_logits);
    }
    Ok(StepOutput {
        grads: accumulator.grads(),
        loss,
        logits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order() {
        assert_eq!(shards(10, 3), vec![(0, 0..4), (1, 4..7), (2, 7..10)]);
        assert_eq!(shards(2, 4), vec![(0, 0..1), (1, 1..2)]);
        assert_eq!(shards(8, 1), vec![(0, 0..8)]);
    }
}
