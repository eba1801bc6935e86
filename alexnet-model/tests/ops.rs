//! AlexNet's backend extension (`alexnet_model::ops`) against the plain Burn composition it
//! replaces: outputs and every gradient, on random convolution and pooling shapes.

use alexnet_model::ops::conv2d_relu;
use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::activation::relu;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor, TensorData};

/// One random convolution: shapes and options.
#[derive(Debug, Clone)]
struct Case {
    batch: usize,
    channels: usize,
    kernels: usize,
    groups: usize,
    kernel: [usize; 2],
    size: [usize; 2],
    options: ConvOptions<2>,
}

/// A small deterministic generator (SplitMix64).
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }

    fn case(&mut self) -> Case {
        let groups = 1 + self.below(2);
        let kernel = [1 + self.below(5), 1 + self.below(5)];
        let stride = [1 + self.below(4), 1 + self.below(3)];
        let padding = [self.below(3), self.below(3)];
        // At least one output position.
        let size = [
            (kernel[0] + self.below(12))
                .saturating_sub(2 * padding[0])
                .max(1),
            (kernel[1] + self.below(12))
                .saturating_sub(2 * padding[1])
                .max(1),
        ];
        Case {
            // Up to 3 images, or 17: Flex's weight gradient then multiplies several
            // images' patch matrices at once (an eighth of the batch per product).
            batch: [1, 2, 3, 17][self.below(4)],
            channels: groups * (1 + self.below(4)),
            kernels: groups * (1 + self.below(5)),
            groups,
            kernel,
            size,
            options: ConvOptions::new(stride, padding, [1, 1], groups),
        }
    }
}

impl Case {
    fn fits(&self) -> bool {
        (0..2).all(|d| self.size[d] + 2 * self.options.padding[d] >= self.kernel[d])
    }

    /// Input, weight and bias, drawn on `B` with `B`'s seeded generator.
    fn tensors<B: Backend>(&self, device: &B::Device) -> [TensorData; 3] {
        B::seed(
            device,
            (self.batch * 1000 + self.channels * 10 + self.kernels) as u64,
        );
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<B, 4>::random(
            [self.batch, self.channels, self.size[0], self.size[1]],
            normal,
            device,
        );
        let w = Tensor::<B, 4>::random(
            [
                self.kernels,
                self.channels / self.groups,
                self.kernel[0],
                self.kernel[1],
            ],
            normal,
            device,
        );
        let b = Tensor::<B, 1>::random([self.kernels], normal, device);
        [x.into_data(), w.into_data(), b.into_data()]
    }
}

/// `max |a − b| ≤ 1e-4 · max(1, max |b|)`.
fn assert_close(what: &str, case: &dyn std::fmt::Debug, actual: TensorData, expected: TensorData) {
    assert_eq!(actual.shape, expected.shape, "{what} shape, {case:?}");
    let a = actual.to_vec::<f32>().unwrap();
    let e = expected.to_vec::<f32>().unwrap();
    let scale = e.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(&e)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "{what}: max diff {diff} (scale {scale}), {case:?}"
    );
}

/// Output and gradients of `relu(conv2d(x, w) + b)` with a loss weighting every output
/// differently (so every gradient entry matters), fused or plain.
fn run<B: AutodiffBackend + alexnet_model::AlexNetBackend>(
    case: &Case,
    data: &[TensorData; 3],
    fused: bool,
) -> [TensorData; 4] {
    let device = Default::default();
    let x = Tensor::<B, 4>::from_data(data[0].clone(), &device).require_grad();
    let w = Tensor::<B, 4>::from_data(data[1].clone(), &device).require_grad();
    let b = Tensor::<B, 1>::from_data(data[2].clone(), &device).require_grad();
    let y = if fused {
        conv2d_relu(x.clone(), w.clone(), b.clone(), case.options.clone())
    } else {
        relu(conv2d(
            x.clone(),
            w.clone(),
            Some(b.clone()),
            case.options.clone(),
        ))
    };
    let n = y.shape().num_elements();
    let weights: Vec<f32> = (0..n).map(|i| (i as f32).sin()).collect();
    let weights = Tensor::<B, 1>::from_floats(weights.as_slice(), &device).reshape(y.shape());
    let grads = (y.clone() * weights).sum().backward();
    [
        y.into_data(),
        x.grad(&grads).unwrap().into_data(),
        w.grad(&grads).unwrap().into_data(),
        b.grad(&grads).unwrap().into_data(),
    ]
}

fn check_backend<B: AutodiffBackend + alexnet_model::AlexNetBackend>(cases: usize) {
    let mut draw = Draw(7);
    let mut checked = 0;
    while checked < cases {
        let case = draw.case();
        if !case.fits() {
            continue;
        }
        let data = case.tensors::<B>(&Default::default());
        let fused = run::<B>(&case, &data, true);
        let plain = run::<B>(&case, &data, false);
        for (what, (f, p)) in ["output", "x grad", "weight grad", "bias grad"]
            .into_iter()
            .zip(fused.into_iter().zip(plain))
        {
            assert_close(what, &case, f, p);
        }
        checked += 1;
    }
}

#[test]
fn flex_conv_relu_equals_the_plain_composition() {
    check_backend::<Autodiff<Flex>>(60);
}

#[test]
fn ndarray_conv_relu_equals_the_plain_composition() {
    check_backend::<Autodiff<NdArray>>(10);
}

/// `ops::max_pool` against Burn's `max_pool2d`: output and input gradient, random planes and
/// windows; every other case takes `|round(x)|` (0, 1, 2, … and no −0), so windows hold ties
/// (as ReLU zeros do) and the gradient must go to the first largest input in row-major order.
fn check_max_pool<B: AutodiffBackend + alexnet_model::AlexNetBackend>(cases: usize) {
    let mut draw = Draw(11);
    let device = Default::default();
    for index in 0..cases {
        let kernel = [1 + draw.below(4), 1 + draw.below(4)];
        let stride = [1 + draw.below(3), 1 + draw.below(3)];
        let shape = [
            1 + draw.below(3),
            1 + draw.below(4),
            kernel[0] + draw.below(9),
            kernel[1] + draw.below(9),
        ];
        let ties = index % 2 == 1;
        let case = format!("shape {shape:?}, kernel {kernel:?}, stride {stride:?}, ties {ties}");
        let x = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let x = if ties { x.round().abs() } else { x };
        let run = |fused: bool| {
            let x = x.clone().require_grad();
            let y = if fused {
                alexnet_model::ops::max_pool(x.clone(), kernel, stride)
            } else {
                burn::tensor::module::max_pool2d(x.clone(), kernel, stride, [0, 0], [1, 1], false)
            };
            let n = y.shape().num_elements();
            let weights: Vec<f32> = (0..n).map(|i| (i as f32).cos()).collect();
            let weights =
                Tensor::<B, 1>::from_floats(weights.as_slice(), &device).reshape(y.shape());
            let grads = (y.clone() * weights).sum().backward();
            (y.into_data(), x.grad(&grads).unwrap().into_data())
        };
        let (fused, plain) = (run(true), run(false));
        assert_eq!(fused.0, plain.0, "output, {case}");
        assert_eq!(fused.1, plain.1, "x grad, {case}");
    }
}

#[test]
fn flex_max_pool_equals_the_plain_composition() {
    check_max_pool::<Autodiff<Flex>>(40);
}

#[test]
fn ndarray_max_pool_equals_the_plain_composition() {
    check_max_pool::<Autodiff<NdArray>>(10);
}

/// `ops::fully_connected` against Burn's `linear`, from one row to more than Flex's
/// small-batch path takes.
fn check_fully_connected<B: Backend + alexnet_model::AlexNetBackend>() {
    let device = Default::default();
    let mut draw = Draw(5);
    for rows in 1..=6 {
        let (inputs, outputs) = (1 + draw.below(300), 1 + draw.below(600));
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<B, 2>::random([rows, inputs], normal, &device);
        let w = Tensor::<B, 2>::random([inputs, outputs], normal, &device);
        let b = Tensor::<B, 1>::random([outputs], normal, &device);
        let fused = alexnet_model::ops::fully_connected(x.clone(), w.clone(), Some(b.clone()));
        let plain = burn::tensor::module::linear(x, w, Some(b));
        let case = Case {
            batch: rows,
            channels: inputs,
            kernels: outputs,
            groups: 1,
            kernel: [1, 1],
            size: [1, 1],
            options: ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        };
        assert_close(
            "fully connected",
            &case,
            fused.into_data(),
            plain.into_data(),
        );
    }
}

#[test]
fn flex_fully_connected_equals_the_plain_composition() {
    check_fully_connected::<Flex>();
}

#[test]
fn flex_conv_relu_gradients_are_deterministic() {
    // Large enough for gemm to split each product across threads.
    let case = Case {
        batch: 8,
        channels: 32,
        kernels: 64,
        groups: 2,
        kernel: [5, 5],
        size: [15, 15],
        options: ConvOptions::new([1, 1], [2, 2], [1, 1], 2),
    };
    let data = case.tensors::<Autodiff<Flex>>(&Default::default());
    let first = run::<Autodiff<Flex>>(&case, &data, true);
    for _ in 0..3 {
        let again = run::<Autodiff<Flex>>(&case, &data, true);
        for (a, b) in first.iter().zip(&again) {
            assert_eq!(a, b, "gradients differ between identical runs");
        }
    }
}
