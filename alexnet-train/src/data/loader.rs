//! Batches decoded and augmented on worker threads, delivered in order to the training
//! thread through bounded channels (so at most `prefetch` batches per worker wait in memory).
//!
//! Worker `w` of `W` builds batches `w, w + W, w + 2W, …`; the consumer reads them round-robin,
//! so the sequence is the same for any `W`. Image `i`'s augmentation in epoch `e` is drawn from
//! a generator seeded with `(seed, e, i)` and the epoch's order from `(seed, e)` — nothing
//! depends on thread timing.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};

use super::augment::Transform;
use super::rng::{mix, Rng};
use super::source::ImageSource;

/// Stream tag of the epoch order in [`mix`].
const ORDER_STREAM: u64 = 0x0D3E;

/// One batch on the host: `[n, 3, side, side]` normalised values and the labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// CHW images one after the other.
    pub images: Vec<f32>,
    /// Class indices.
    pub labels: Vec<usize>,
    /// Side of the square images.
    pub side: usize,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// What to load.
#[derive(Clone)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Batches each worker may build ahead.
    pub prefetch: usize,
    /// The run's seed.
    pub seed: u64,
}

/// The order of the training images in `epoch` (1-based): a seeded permutation.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    Rng::new(mix(seed, ORDER_STREAM, epoch as u64)).shuffle(&mut order);
    order
}

/// Iterator over the batches of one pass.
pub struct Batches {
    receivers: Vec<Receiver<Result<Batch>>>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    count: usize,
}

impl Batches {
    /// Number of batches in the pass.
    pub fn num_batches(&self) -> usize {
        self.count
    }
}

/// Starts the workers for one pass over `order`. `train`: augment with the generator of
/// `(seed, epoch, image)`, else the evaluation view.
pub fn batches(
    source: Arc<dyn ImageSource>,
    order: Vec<usize>,
    transform: Arc<Transform>,
    config: &LoaderConfig,
    train: bool,
    epoch: usize,
) -> Batches {
    let batch_size = config.batch_size.max(1);
    let workers = config.workers.max(1);
    let order = Arc::new(order);
    let count = order.len().div_ceil(batch_size);
    let seed = config.seed;
    let mut receivers = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for w in 0..workers.min(count.max(1)) {
        let (tx, rx) = sync_channel(config.prefetch.max(1));
        let (source, order, transform) = (source.clone(), order.clone(), transform.clone());
        let nworkers = workers.min(count.max(1));
        let handle = std::thread::Builder::new()
            .name(format!("loader-{w}"))
            .spawn(move || {
                for b in (w..count).step_by(nworkers) {
                    let ids = &order[b * batch_size..((b + 1) * batch_size).min(order.len())];
                    let batch = build(&*source, ids, &transform, train, seed, epoch);
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        return; // consumer gone, or error delivered
                    }
                }
            })
            .expect("spawn a loader thread");
        receivers.push(rx);
        handles.push(handle);
    }
    Batches {
        receivers,
        handles,
        next: 0,
        count,
    }
}

fn build(
    source: &dyn ImageSource,
    ids: &[usize],
    transform: &Transform,
    train: bool,
    seed: u64,
    epoch: usize,
) -> Result<Batch> {
    let side = transform.crop;
    let mut images = Vec::with_capacity(ids.len() * 3 * side * side);
    let mut labels = Vec::with_capacity(ids.len());
    for &i in ids {
        let img = source.image(i)?;
        // A long, thin image would be huge once resized: refused before resizing.
        transform
            .resize_check(img.width(), img.height())
            .map_err(|e| anyhow::anyhow!("{}: {e}", source.name(i)))?;
        let values = if train {
            transform.train(&img, &mut Rng::new(mix(seed, epoch as u64, i as u64)))
        } else {
            transform.eval(&img)
        };
        images.extend(values);
        labels.push(source.label(i));
    }
    Ok(Batch {
        images,
        labels,
        side,
    })
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let rx = &self.receivers[self.next % self.receivers.len()];
        self.next += 1;
        match rx.recv() {
            Ok(batch) => {
                if batch.is_err() {
                    self.next = self.count;
                }
                Some(batch)
            }
            Err(_) => {
                self.next = self.count;
                Some(Err(anyhow!("a data loader thread stopped unexpectedly")))
            }
        }
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // Closing the channels makes blocked workers return; then wait for them.
        self.receivers.clear();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::source::InMemory;
    use super::*;

    fn source(n: usize) -> Arc<dyn ImageSource> {
        let images = (0..n)
            .map(|i| {
                (
                    image::RgbImage::from_pixel(32, 32, image::Rgb([i as u8, 0, 0])),
                    i % 3,
                )
            })
            .collect();
        Arc::new(InMemory::new(images))
    }

    fn collect(workers: usize, train: bool) -> Vec<Batch> {
        let config = LoaderConfig {
            batch_size: 4,
            workers,
            prefetch: 2,
            seed: 5,
        };
        let order = epoch_order(10, 5, 1);
        batches(
            source(10),
            order,
            Arc::new(Transform::cifar()),
            &config,
            train,
            1,
        )
        .collect::<Result<Vec<_>>>()
        .unwrap()
    }

    #[test]
    fn same_batches_for_any_worker_count() {
        let one = collect(1, true);
        assert_eq!(one.iter().map(Batch::len).collect::<Vec<_>>(), [4, 4, 2]);
        assert_eq!(one, collect(3, true));
        assert_eq!(collect(1, false), collect(2, false));
        let mut labels: Vec<usize> = one.iter().flat_map(|b| b.labels.clone()).collect();
        labels.sort();
        assert_eq!(labels, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn orders_differ_by_epoch_and_seed() {
        assert_ne!(epoch_order(50, 1, 1), epoch_order(50, 1, 2));
        assert_ne!(epoch_order(50, 1, 1), epoch_order(50, 2, 1));
        assert_eq!(epoch_order(50, 1, 1), epoch_order(50, 1, 1));
    }

    #[test]
    fn dropping_early_stops_workers() {
        let config = LoaderConfig {
            batch_size: 1,
            workers: 2,
            prefetch: 1,
            seed: 0,
        };
        let mut it = batches(
            source(100),
            (0..100).collect(),
            Arc::new(Transform::cifar()),
            &config,
            true,
            1,
        );
        assert!(it.next().unwrap().is_ok());
        drop(it); // must not hang
    }
}
