//! The optimizer: SGD with momentum and weight decay, one backend operation per parameter
//! ([`AlexNetBackend::sgd_step`]; on Flex one pass over the parameter, its gradient and its
//! momentum buffer, where Burn's `Sgd` makes five passes, each into a new tensor: 8.4 ms of
//! a cifar training step at batch 32). Its numbers and its records are Burn's `Sgd`'s.

use alexnet_model::ops::SgdStep;
use alexnet_model::AlexNetBackend;
use burn::optim::{LearningRate, SimpleOptimizer};
use burn::record::Record;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};

/// SGD as PyTorch's with dampening 0 and no Nesterov momentum: `v = momentum·v + grad +
/// weight_decay·param`, then `param − lr·v`.
#[derive(Debug, Clone, Copy)]
pub struct FusedSgd {
    momentum: f32,
    weight_decay: Option<f32>,
}

impl FusedSgd {
    /// `weight_decay` 0 means none.
    pub fn new(momentum: f64, weight_decay: f64) -> Self {
        Self {
            momentum: momentum as f32,
            weight_decay: (weight_decay > 0.0).then_some(weight_decay as f32),
        }
    }
}

/// A parameter's optimizer state, recorded as Burn's `SgdState` is (the same fields, nested
/// the same way): checkpoints written with Burn's `Sgd` load, and the other way round.
#[derive(Record, Clone)]
pub struct SgdState<B: Backend, const D: usize> {
    pub momentum: Option<MomentumState<B, D>>,
}

/// The momentum buffer, as Burn's `MomentumState`.
#[derive(Record, Clone)]
pub struct MomentumState<B: Backend, const D: usize> {
    pub velocity: Tensor<B, D>,
}

impl<B: AlexNetBackend> SimpleOptimizer<B> for FusedSgd {
    type State<const D: usize> = SgdState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let velocity = state
            .and_then(|state| state.momentum)
            .map(|momentum| momentum.velocity.into_primitive().tensor());
        let step = SgdStep {
            learning_rate: lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        };
        let (param, velocity) = B::sgd_step(
            tensor.into_primitive().tensor(),
            grad.into_primitive().tensor(),
            velocity,
            step,
        );
        let velocity = Tensor::from_primitive(TensorPrimitive::Float(velocity));
        let state = SgdState {
            momentum: Some(MomentumState { velocity }),
        };
        (
            Tensor::from_primitive(TensorPrimitive::Float(param)),
            Some(state),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        SgdState {
            momentum: state.momentum.map(|momentum| MomentumState {
                velocity: momentum.velocity.to_device(device),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::adaptor::OptimizerAdaptor;
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{GradientsParams, Optimizer, SgdConfig};
    use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
    use burn::tensor::backend::AutodiffBackend;
    use burn::tensor::{Distribution, TensorData};

    type Net<B> = Linear<Autodiff<B>>;

    /// One step of `optim` on `net` with a fixed input.
    fn step<B: AlexNetBackend, O: Optimizer<Net<B>, Autodiff<B>>>(
        optim: &mut O,
        net: Net<B>,
        x: &Tensor<Autodiff<B>, 2>,
    ) -> Net<B> {
        let loss = net.forward(x.clone()).powi_scalar(2).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        optim.step(0.05, net, grads)
    }

    fn weights<B: AutodiffBackend>(net: &Linear<B>) -> TensorData {
        net.weight.val().into_data()
    }

    /// Three steps give bit for bit Burn's `Sgd`'s parameters (momentum 0.9, dampening 0,
    /// `weight_decay` 0 for none), also when the run continues from Burn's optimizer record.
    fn equals_burns_sgd<B: AlexNetBackend>(weight_decay: f64) {
        let device = Default::default();
        let x = Tensor::<Autodiff<B>, 2>::random([5, 7], Distribution::Default, &device);
        let net: Net<B> = LinearConfig::new(7, 3).init(&device);
        // Burn initialises parameters on first use: before cloning, or each clone draws its
        // own.
        let _ = (net.weight.val(), net.bias.as_ref().map(|bias| bias.val()));
        let mut burns = SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(0.9)
                    .with_dampening(0.0)
                    .with_nesterov(false),
            ))
            .with_weight_decay(
                (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
            )
            .init::<Autodiff<B>, Net<B>>();
        let mut ours = OptimizerAdaptor::from(FusedSgd::new(0.9, weight_decay));
        let (mut a, mut b) = (net.clone(), net);
        for _ in 0..2 {
            a = step(&mut burns, a, &x);
            b = step(&mut ours, b, &x);
            assert_eq!(weights(&a), weights(&b));
        }
        // Burn's record, loaded by ours.
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = recorder.record(burns.to_record(), ()).unwrap();
        let mut resumed = OptimizerAdaptor::from(FusedSgd::new(0.9, weight_decay))
            .load_record(recorder.load(bytes, &device).unwrap());
        let a = step(&mut burns, a, &x);
        let c = step(&mut resumed, b.clone(), &x);
        let b = step(&mut ours, b, &x);
        assert_eq!(weights(&a), weights(&b));
        assert_eq!(weights(&a), weights(&c));
        assert_ne!(weights(&a), weights(&step(&mut ours, b, &x)));
    }

    #[cfg(feature = "flex")]
    #[test]
    fn flex_equals_burns_sgd() {
        equals_burns_sgd::<burn::backend::Flex>(5e-4);
        equals_burns_sgd::<burn::backend::Flex>(0.0);
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn ndarray_equals_burns_sgd() {
        equals_burns_sgd::<burn::backend::NdArray>(5e-4);
        equals_burns_sgd::<burn::backend::NdArray>(0.0);
    }
}
