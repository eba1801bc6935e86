//! `alexnet-train bench`: training-step throughput on one backend — forward, cross-entropy,
//! backward and the SGD step of a real run ([`sgd`], [`batch_gradients`]), on a synthetic
//! batch, without data loading.

use alexnet_common::backend::{dispatch, BackendJob};
use alexnet_common::bench::{BenchArgs, BenchSetup};
use alexnet_model::{AlexNet, AlexNetBackend};
use anyhow::Result;
use burn::backend::Autodiff;
use burn::optim::Optimizer;

use super::fit::sgd;
use super::parallel::batch_gradients;
use super::TrainConfig;
use crate::data::loader::Batch;
use crate::data::rng::Rng;

struct TrainBench<'a> {
    args: &'a BenchArgs,
    setup: &'a BenchSetup,
    batch: Batch,
}

impl BackendJob for TrainBench<'_> {
    type Output = (usize, f64);

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<Self::Output> {
        let initial: AlexNet<Autodiff<B>> = self.setup.config.try_init(&device)?;
        let side = self.batch.side;
        initial.check_input([1, 3, side, side])?;
        // The optimizer takes the model by value: it is out of this slot during a step.
        let mut model = Some(initial);
        // The defaults of a real run: lr 0.02, momentum 0.9, weight decay 5e-4.
        let train = TrainConfig::default();
        let mut optim = sgd::<Autodiff<B>>(&train);
        let devices = [device];
        self.args.timing.measure(|| {
            let current = model
                .take()
                .expect("the model is put back after every step");
            // The step reads the loss and logits back, so the backend has finished.
            let step = batch_gradients(&current, &self.batch, &devices)?;
            model = Some(optim.step(train.lr, current, step.grads));
            Ok(())
        })
    }
}

/// Runs `alexnet-train bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    // A training step keeps activations and their gradients: checked before the batch exists.
    let setup = args.setup(true)?;
    let batch = synthetic_batch(args.batch_size, setup.input_size, setup.config.num_classes);
    let job = TrainBench {
        args,
        setup: &setup,
        batch,
    };
    let measured = dispatch(setup.backend, job)?;
    args.report("train-step", &setup, measured)
}

/// `n` images of uniform noise in [-1, 1) and uniformly drawn labels (fixed seed).
fn synthetic_batch(n: usize, side: usize, classes: usize) -> Batch {
    let mut rng = Rng::new(0);
    Batch {
        images: (0..n * 3 * side * side)
            .map(|_| (2.0 * rng.uniform() - 1.0) as f32)
            .collect(),
        labels: (0..n).map(|_| rng.below(classes)).collect(),
        side,
    }
}
