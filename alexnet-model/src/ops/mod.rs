//! AlexNet's own operations, as a Burn backend extension.
//!
//! [`AlexNetBackend`] extends Burn's `Backend` trait the way Burn's book ("Backend
//! Extension") describes: each operation has a default body that is the plain Burn
//! composition, so every backend gets it unchanged, and a backend may override it with a
//! faster implementation. Flex (Burn's CPU backend) does, on its tensors' buffers (module
//! `flex`, cargo feature `flex`); `Autodiff` wraps any implementation with its own backward
//! pass (module `autodiff`, cargo feature `autodiff`).
//!
//! The operations:
//! * [`conv2d_relu`]: `relu(conv2d(x, weight) + bias)` — every AlexNet convolution is
//!   followed by a ReLU, so the pair is one operation (one pass over the output, and a
//!   backward pass that needs only the output).
//! * [`fully_connected`]: fc6–fc8; Flex streams the weights once for a few images (a
//!   general matrix product is made for many).
//! * [`max_pool`]: the overlapping max pool (Flex's own is a scalar loop over generic
//!   strides and paddings).
//! * [`local_response_norm`]: the paper's LRN in one pass (Burn's composition transposes the
//!   activations to pool over channels).
//! * [`AlexNetBackend::sgd_step`]: SGD with momentum and weight decay, one pass per parameter
//!   (Burn's `Sgd` makes five element-wise passes, each with a new tensor).

#[cfg(feature = "autodiff")]
mod autodiff;
#[cfg(feature = "flex")]
mod flex;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::{Scalar, Tensor, TensorMetadata, TensorPrimitive};

use crate::config::LrnConfig;

/// The gradients of [`AlexNetBackend::conv2d_relu`].
#[derive(Debug)]
pub struct ConvReluGrads<B: Backend> {
    /// `[N, C, H, W]`, when asked for (the input images need none).
    pub x: Option<FloatTensor<B>>,
    /// `[O, C/groups, k, k]`.
    pub weight: FloatTensor<B>,
    /// `[O]`.
    pub bias: FloatTensor<B>,
}

/// One SGD step's hyper-parameters: PyTorch's SGD with dampening 0 and no Nesterov
/// momentum, which is also Burn's `Sgd` configured that way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdStep {
    pub learning_rate: f64,
    pub momentum: f32,
    /// The L2 penalty, if any.
    pub weight_decay: Option<f32>,
}

/// A Burn backend with AlexNet's operations. The default bodies are the plain Burn
/// composition; implement the trait with an empty block for a backend without faster ones.
pub trait AlexNetBackend: Backend {
    /// `relu(conv2d(x, weight) + bias)`: x `[N, C, H, W]`, weight `[O, C/groups, kh, kw]`,
    /// bias `[O]` → `[N, O, H', W']`.
    fn conv2d_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::relu(Self::conv2d(x, weight, Some(bias), options))
    }

    /// Local response normalisation across channels (see [`LrnConfig`]): `[N, C, H, W]` →
    /// `[N, C, H, W]`. The default is Burn's `LocalResponseNorm` (which autodiff
    /// differentiates op by op).
    fn local_response_norm(x: FloatTensor<Self>, lrn: &LrnConfig) -> FloatTensor<Self> {
        plain_local_response_norm::<Self>(x, lrn)
    }

    /// A fully connected layer: x `[N, in]`, weight `[in, out]` (Burn's layout), bias `[out]`
    /// → `[N, out]`.
    fn fully_connected(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        Self::linear(x, weight, bias)
    }

    /// Max pooling without padding: `[N, C, H, W]` → `[N, C, (H−k)/s+1, (W−k)/s+1]`, each
    /// output the largest input of its `kernel` window.
    fn max_pool(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2]) -> FloatTensor<Self> {
        Self::max_pool2d(x, kernel, stride, [0, 0], [1, 1], false)
    }

    /// The gradient of [`max_pool`](Self::max_pool) for its input `x`: each output's
    /// gradient goes to the (first) largest input of its window.
    fn max_pool_backward(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        plain_max_pool_backward::<Self>(x, kernel, stride, output_grad)
    }

    /// The gradients of [`conv2d_relu`](Self::conv2d_relu) from its inputs, its `output`
    /// and the gradient of the output (all shapes as there); `x_grad` says whether the
    /// input's gradient is needed.
    fn conv2d_relu_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        x_grad: bool,
    ) -> ConvReluGrads<Self> {
        plain_conv2d_relu_backward::<Self>(x, weight, output, output_grad, options, x_grad)
    }

    /// One SGD step of a parameter from its gradient and its momentum buffer (`None` before
    /// the first step), all of one shape: `g = weight_decay·param + grad`, `v = g +
    /// momentum·v` (`v = g` on the first step), returns `(param − lr·v, v)`. The default is
    /// Burn's `Sgd` operation by operation; an override must give the same numbers (the
    /// same `f32` operations in the same order).
    fn sgd_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: Option<FloatTensor<Self>>,
        step: SgdStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        plain_sgd_step::<Self>(param, grad, velocity, step)
    }
}

/// The default body of [`AlexNetBackend::sgd_step`]: the operations of Burn's `Sgd`
/// (`WeightDecay::transform`, `Momentum::transform`, then the step), in its order.
pub(crate) fn plain_sgd_step<B: Backend>(
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    velocity: Option<FloatTensor<B>>,
    step: SgdStep,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let grad = match step.weight_decay {
        Some(penalty) => B::float_add(
            B::float_mul_scalar(param.clone(), Scalar::Float(penalty.into())),
            grad,
        ),
        None => grad,
    };
    let velocity = match velocity {
        Some(velocity) => B::float_add(
            grad,
            B::float_mul_scalar(velocity, Scalar::Float(step.momentum.into())),
        ),
        None => grad,
    };
    let delta = B::float_mul_scalar(velocity.clone(), Scalar::Float(step.learning_rate));
    (B::float_sub(param, delta), velocity)
}

/// The default body of [`AlexNetBackend::local_response_norm`]: Burn's module.
pub(crate) fn plain_local_response_norm<B: Backend>(
    x: FloatTensor<B>,
    lrn: &LrnConfig,
) -> FloatTensor<B> {
    let x = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(x));
    lrn.burn_config()
        .init()
        .forward(x)
        .into_primitive()
        .tensor()
}

/// The default body of [`AlexNetBackend::conv2d_relu_backward`]: Burn's ReLU and
/// convolution gradients.
pub(crate) fn plain_conv2d_relu_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    output: FloatTensor<B>,
    output_grad: FloatTensor<B>,
    options: ConvOptions<2>,
    x_grad: bool,
) -> ConvReluGrads<B> {
    let grad = B::relu_backward(output, output_grad);
    // Σ over images and positions: [N, O, H', W'] → [N, O, H'·W'] → [1, O, 1] → [O].
    let [n, o, h, w] = grad.shape().dims();
    let bias = B::float_reshape(grad.clone(), [n, o, h * w].into());
    let bias = B::float_sum_dim(B::float_sum_dim(bias, 2), 0);
    ConvReluGrads {
        x: x_grad.then(|| {
            B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone())
        }),
        bias: B::float_reshape(bias, [o].into()),
        weight: B::conv2d_weight_backward(x, weight, grad, options),
    }
}

/// [`AlexNetBackend::local_response_norm`] on tensors.
pub fn local_response_norm<B: AlexNetBackend>(x: Tensor<B, 4>, lrn: &LrnConfig) -> Tensor<B, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(B::local_response_norm(
        x.into_primitive().tensor(),
        lrn,
    )))
}

/// The default body of [`AlexNetBackend::max_pool_backward`]: Burn's max pool with indices
/// and its backward.
pub(crate) fn plain_max_pool_backward<B: Backend>(
    x: FloatTensor<B>,
    kernel: [usize; 2],
    stride: [usize; 2],
    output_grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let (padding, dilation) = ([0, 0], [1, 1]);
    let indices =
        B::max_pool2d_with_indices(x.clone(), kernel, stride, padding, dilation, false).indices;
    B::max_pool2d_with_indices_backward(
        x,
        kernel,
        stride,
        padding,
        dilation,
        false,
        output_grad,
        indices,
    )
    .x_grad
}

/// [`AlexNetBackend::fully_connected`] on tensors.
pub fn fully_connected<B: AlexNetBackend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 2> {
    Tensor::from_primitive(TensorPrimitive::Float(B::fully_connected(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.map(|b| b.into_primitive().tensor()),
    )))
}

/// [`AlexNetBackend::max_pool`] on tensors.
pub fn max_pool<B: AlexNetBackend>(
    x: Tensor<B, 4>,
    kernel: [usize; 2],
    stride: [usize; 2],
) -> Tensor<B, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(B::max_pool(
        x.into_primitive().tensor(),
        kernel,
        stride,
    )))
}

/// [`AlexNetBackend::conv2d_relu`] on tensors.
pub fn conv2d_relu<B: AlexNetBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    options: ConvOptions<2>,
) -> Tensor<B, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(B::conv2d_relu(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.into_primitive().tensor(),
        options,
    )))
}

// The backends without faster operations: the plain composition.
#[cfg(feature = "ndarray")]
impl AlexNetBackend for burn::backend::NdArray {}
#[cfg(feature = "wgpu")]
impl AlexNetBackend for burn::backend::Wgpu {}
#[cfg(feature = "cuda")]
impl AlexNetBackend for burn::backend::Cuda {}

/// A training backend: [`AlexNetBackend`] with autodiff, whose inner backend (validation,
/// `model.valid()`) has AlexNet's operations too. `Autodiff<B>` is one for every
/// [`AlexNetBackend`] `B`.
pub trait AlexNetAutodiffBackend:
    AlexNetBackend + AutodiffBackend<InnerBackend: AlexNetBackend>
{
}

impl<B> AlexNetAutodiffBackend for B
where
    B: AlexNetBackend + AutodiffBackend,
    B::InnerBackend: AlexNetBackend,
{
}
