//! `alexnet-infer bench`: forward throughput on one backend, after warm-up.

use alexnet_common::backend::{dispatch, BackendJob};
use alexnet_common::bench::{BenchArgs, BenchSetup};
use alexnet_model::AlexNetBackend;
use anyhow::Result;
use burn::tensor::{Distribution, Tensor};

struct Bench<'a> {
    args: &'a BenchArgs,
    setup: &'a BenchSetup,
}

impl BackendJob for Bench<'_> {
    type Output = (usize, f64);

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<Self::Output> {
        let model = self.setup.config.try_init::<B>(&device)?;
        let side = self.setup.input_size;
        let images = Tensor::<B, 4>::random(
            [self.args.batch_size, 3, side, side],
            Distribution::Default,
            &device,
        );
        model.check_input(images.dims())?;
        // Reading the logits back waits for asynchronous backends to finish.
        self.args.timing.measure(|| {
            model.try_forward(images.clone())?.into_data();
            Ok(())
        })
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let setup = args.setup(false)?;
    let measured = dispatch(
        setup.backend,
        Bench {
            args,
            setup: &setup,
        },
    )?;
    args.report("forward", &setup, measured)
}
