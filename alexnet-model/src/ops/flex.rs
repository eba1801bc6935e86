//! [`AlexNetBackend`] for Flex, on its tensors' `f32` buffers.
//!
//! The convolution is Caffe's im2col + gemm, one tile of images per thread: per tile and
//! group, `im2col` lays the input patches out as a `[C/g·kh·kw, H'·W']` matrix per image,
//! side by side, and one gemm (the `gemm` crate, which Flex itself uses) multiplies the
//! `[O/g, C/g·kh·kw]` weights by them; bias and ReLU follow on the way into the NCHW output.
//! A tile is one image, or as many as it takes to reach [`TILE_COLUMNS`] output positions
//! (the 7×7 maps of the cifar variant: four). (A single tile spreads its gemms over the
//! threads instead; one large gemm over many large images ran slower than one image per
//! thread, measured.) Flex's own convolution converts every input to NHWC, runs one small
//! gemm per 512-position tile, and adds bias and ReLU in separate passes; its backward pass
//! is Burn's generic one (transposed convolutions).
//!
//! The backward pass is the adjoint of the same steps: the input gradient is
//! `col2im(Wᵀ · grad)` per tile, skipped where nobody needs it (conv1's input); the weight
//! gradient `Σₙ grad[n] · col[n]ᵀ` is summed in a fixed number of parts of the batch in
//! parallel (each part's patch matrices side by side, so its products are long), then the
//! parts in order: deterministic whatever the thread count.
//!
//! 3×3 and 5×5 convolutions at stride 1 (conv2–conv5; not cifar's conv1, 3 channels) run by
//! Winograd's minimal filtering instead, forward, input gradient and weight gradient
//! ([`winograd`]): F(2×2, 3×3) on maps of at least 10×10, F(4×4, 3×3) on cifar's 7×7 maps,
//! F(3×3, 5×5) for conv2 (2.25× to 4.6× fewer multiply-adds).
//!
//! LRN sums the squares of each output plane's neighbouring channel planes directly (Burn's
//! composition transposes the activations to average-pool across channels).
//!
//! The SGD step updates a parameter and its momentum buffer in one pass, in place when nobody
//! else holds them (Burn's `Sgd` makes five passes, each into a new tensor).
//!
//! Anything else (another dtype, dilation, an even LRN size) takes the plain Burn
//! composition.

use std::cell::Cell;
use std::ops::Range;

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::Flex;
use burn::tensor::ops::{ActivationOps, ConvOptions, FloatTensor, ModuleOps};
use burn::tensor::{Bytes, DType, Shape, TensorMetadata};
use gemm::Parallelism;
use multiversion::multiversion;
use rayon::prelude::*;

use super::{AlexNetBackend, ConvReluGrads, SgdStep};
use crate::config::LrnConfig;

mod winograd;

impl AlexNetBackend for Flex {
    fn conv2d_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match Conv::new(&x, &weight, &options) {
            Some(conv) => conv.forward(&x, &weight, &bias),
            None => Self::relu(Self::conv2d(x, weight, Some(bias), options)),
        }
    }

    fn fully_connected(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        let (shape, weight_shape) = (x.shape(), weight.shape());
        let small =
            shape.num_dims() == 2 && weight_shape.num_dims() == 2 && shape[0] <= SMALL_BATCH;
        if !small || x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
            return Self::linear(x, weight, bias);
        }
        let [rows, inputs] = shape.dims();
        let [_, outputs] = weight_shape.dims();
        let (x, weight) = (f32s(&x), f32s(&weight));
        let bias = bias
            .map(|b| f32s(&b).into_owned())
            .unwrap_or_else(|| vec![0.0; outputs]);
        // The weight rows in fixed parts, in parallel: each part streams its rows once into a
        // partial sum; the partial sums are added in order (deterministic).
        let part_rows = inputs.div_ceil(FC_PARTS).max(1);
        let partials: Vec<Vec<f32>> = weight
            .par_chunks(part_rows * outputs)
            .enumerate()
            .map(|(p, block)| {
                let mut acc = vec![0.0f32; rows * outputs];
                for (r, acc) in acc.chunks_exact_mut(outputs).enumerate() {
                    let x = &x[r * inputs + p * part_rows..][..block.len() / outputs];
                    add_weighted_rows(acc, x, block);
                }
                acc
            })
            .collect();
        let mut out: Vec<f32> = (0..rows).flat_map(|_| bias.iter().copied()).collect();
        for partial in &partials {
            out.iter_mut().zip(partial).for_each(|(o, p)| *o += p);
        }
        tensor(out, Shape::new([rows, outputs]))
    }

    fn max_pool(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2]) -> FloatTensor<Self> {
        match Pool::new(&x, kernel, stride) {
            Some(pool) => pool.forward(&x),
            None => Self::max_pool2d(x, kernel, stride, [0, 0], [1, 1], false),
        }
    }

    fn max_pool_backward(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match Pool::new(&x, kernel, stride) {
            Some(pool) => pool.backward(&x, &output_grad),
            None => super::plain_max_pool_backward::<Self>(x, kernel, stride, output_grad),
        }
    }

    fn local_response_norm(x: FloatTensor<Self>, lrn: &LrnConfig) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 || x.shape().num_dims() != 4 || lrn.size.is_multiple_of(2) {
            return super::plain_local_response_norm::<Self>(x, lrn);
        }
        local_response_norm(&x, lrn)
    }

    fn conv2d_relu_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        x_grad: bool,
    ) -> ConvReluGrads<Self> {
        match Conv::new(&x, &weight, &options) {
            Some(conv) => conv.backward(&x, &weight, &output, &output_grad, x_grad),
            None => {
                super::plain_conv2d_relu_backward(x, weight, output, output_grad, options, x_grad)
            }
        }
    }

    fn sgd_step(
        mut param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mut velocity: Option<FloatTensor<Self>>,
        step: SgdStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let shape = param.shape();
        let fits = [Some(&param), Some(&grad), velocity.as_ref()]
            .into_iter()
            .flatten()
            .all(|t| t.dtype() == DType::F32 && t.shape() == shape);
        if !fits {
            return super::plain_sgd_step::<Self>(param, grad, velocity, step);
        }
        let grads = f32s(&grad);
        let update = |params: &mut [f32], velocities: &mut [f32], first: bool| {
            params
                .par_chunks_mut(SGD_CHUNK)
                .zip(velocities.par_chunks_mut(SGD_CHUNK))
                .zip(grads.par_chunks(SGD_CHUNK))
                .for_each(|((p, v), g)| sgd_chunk(p, v, g, step, first));
        };
        // In place where the parameter and its momentum buffer are nobody else's (the usual
        // case: the optimizer holds the only reference); else into new buffers.
        if let Some(buffer) = velocity.as_mut() {
            if let (Some(p), Some(v)) = (whole_storage(&mut param), whole_storage(buffer)) {
                update(p, v, false);
                return (param, velocity.expect("checked above"));
            }
        }
        let mut params = f32s(&param).into_owned();
        let mut velocities = match &velocity {
            Some(v) => f32s(v).into_owned(),
            None => vec![0.0; params.len()],
        };
        update(&mut params, &mut velocities, velocity.is_none());
        (tensor(params, shape.clone()), tensor(velocities, shape))
    }
}

/// [`AlexNetBackend::sgd_step`] on a chunk of a parameter `p`, its momentum buffer `v` and
/// its gradient `g` (`first`: no momentum yet): Burn's `Sgd` element by element, the same
/// operations in the same order.
#[multiversion(targets = "simd")]
fn sgd_chunk(p: &mut [f32], v: &mut [f32], g: &[f32], step: SgdStep, first: bool) {
    // One loop per case, each without a branch (so that it vectorises).
    #[inline(always)]
    fn run(
        (p, v, g): (&mut [f32], &mut [f32], &[f32]),
        lr: f32,
        decayed: impl Fn(f32, f32) -> f32,
        velocity: impl Fn(f32, f32) -> f32,
    ) {
        for ((p, v), &g) in p.iter_mut().zip(v).zip(g) {
            *v = velocity(decayed(*p, g), *v);
            *p -= *v * lr;
        }
    }
    let (lr, momentum, chunk) = (step.learning_rate as f32, step.momentum, (p, v, g));
    let with_momentum = move |g: f32, v: f32| g + v * momentum;
    match (step.weight_decay, first) {
        (Some(penalty), false) => run(chunk, lr, move |p, g| p * penalty + g, with_momentum),
        (Some(penalty), true) => run(chunk, lr, move |p, g| p * penalty + g, |g, _| g),
        (None, false) => run(chunk, lr, |_, g| g, with_momentum),
        (None, true) => run(chunk, lr, |_, g| g, |g, _| g),
    }
}

/// `acc += Σᵢ x[i] · rows[i]`, the rows of `rows` (each as long as `acc`) added one after
/// the other, four per pass over `acc` (the same sums in the same order as one per pass).
#[multiversion(targets = "simd")]
fn add_weighted_rows(acc: &mut [f32], x: &[f32], rows: &[f32]) {
    let len = acc.len();
    let mut quads = rows.chunks_exact(4 * len);
    for (x, quad) in x.chunks_exact(4).zip(quads.by_ref()) {
        let (w0, rest) = quad.split_at(len);
        let (w1, rest) = rest.split_at(len);
        let (w2, w3) = rest.split_at(len);
        let [x0, x1, x2, x3] = [x[0], x[1], x[2], x[3]];
        for ((((a, &w0), &w1), &w2), &w3) in acc.iter_mut().zip(w0).zip(w1).zip(w2).zip(w3) {
            *a = *a + x0 * w0 + x1 * w1 + x2 * w2 + x3 * w3;
        }
    }
    let rest = quads.remainder();
    for (&x, row) in x[x.len() - rest.len() / len..]
        .iter()
        .zip(rest.chunks_exact(len))
    {
        acc.iter_mut().zip(row).for_each(|(a, &w)| *a += x * w);
    }
}

/// Elements per task of the SGD step.
const SGD_CHUNK: usize = 1 << 16;

/// A contiguous `f32` tensor's elements, mutable, when its buffer holds exactly them and
/// nobody else holds the buffer.
fn whole_storage(tensor: &mut FlexTensor) -> Option<&mut [f32]> {
    let len = tensor.shape().num_elements();
    let exact = tensor.as_slice::<f32>().is_some_and(|s| s.len() == len)
        && tensor.storage::<f32>().len() == len;
    exact.then(|| tensor.try_storage_mut::<f32>()).flatten()
}

/// A max pool's geometry (no padding): per `[H, W]` plane.
#[derive(Debug, Clone, Copy)]
struct Pool {
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    out_height: usize,
    out_width: usize,
}

impl Pool {
    /// The pool of `x` `[N, C, H, W]`, or `None` when this module does not handle it.
    fn new(x: &FlexTensor, kernel: [usize; 2], stride: [usize; 2]) -> Option<Self> {
        let shape = x.shape();
        if x.dtype() != DType::F32 || shape.num_dims() != 4 {
            return None;
        }
        let [_, _, height, width] = shape.dims();
        let fits = (0..2).all(|d| kernel[d] > 0 && stride[d] > 0)
            && height >= kernel[0]
            && width >= kernel[1];
        fits.then(|| Self {
            height,
            width,
            kernel,
            stride,
            out_height: (height - kernel[0]) / stride[0] + 1,
            out_width: (width - kernel[1]) / stride[1] + 1,
        })
    }

    /// Each output the largest input of its window (NaN wins, as in PyTorch): per plane, the
    /// kernel's rows are reduced first, then each window's columns.
    fn forward(&self, x: &FlexTensor) -> FlexTensor {
        let shape = x.shape();
        let [n, c, _, _] = shape.dims();
        let x = f32s(x);
        let (plane, out_plane) = (self.height * self.width, self.out_height * self.out_width);
        let mut out = vec![0.0f32; n * c * out_plane];
        out.par_chunks_exact_mut(out_plane)
            .zip(x.par_chunks_exact(plane))
            .for_each(|(out, plane)| max_pool_plane(self, plane, out));
        tensor(out, Shape::new([n, c, self.out_height, self.out_width]))
    }

    /// The input's gradient: each output's gradient added at the first largest input of its
    /// window (row-major order, as PyTorch's indices). Per output row, the kernel's rows are
    /// reduced first (each column's largest and its first row, in one vectorised pass), then
    /// each window picks among its columns: the largest, on a tie the one in the earlier row,
    /// then the earlier column.
    fn backward(&self, x: &FlexTensor, output_grad: &FlexTensor) -> FlexTensor {
        let shape = x.shape();
        let (x, output_grad) = (f32s(x), f32s(output_grad));
        let (plane, out_plane) = (self.height * self.width, self.out_height * self.out_width);
        let mut input_grad = vec![0.0f32; x.len()];
        input_grad
            .par_chunks_exact_mut(plane)
            .zip(x.par_chunks_exact(plane))
            .zip(output_grad.par_chunks_exact(out_plane))
            .for_each(|((input_grad, plane), grad)| {
                max_pool_plane_backward(self, plane, grad, input_grad);
            });
        tensor(input_grad, shape)
    }
}

/// [`Pool::forward`] on one `[H, W]` plane into its `[H', W']` output.
#[multiversion(targets = "simd")]
fn max_pool_plane(pool: &Pool, plane: &[f32], out: &mut [f32]) {
    let (w, ow) = (pool.width, pool.out_width);
    let [kh, kw] = pool.kernel;
    let [sh, sw] = pool.stride;
    let mut rows = vec![0.0f32; w];
    for (oy, out) in out.chunks_exact_mut(ow).enumerate() {
        let top = oy * sh;
        rows.copy_from_slice(&plane[top * w..][..w]);
        for row in plane[(top + 1) * w..].chunks_exact(w).take(kh - 1) {
            rows.iter_mut()
                .zip(row)
                .for_each(|(m, &v)| *m = larger(*m, v));
        }
        for (ox, o) in out.iter_mut().enumerate() {
            let window = &rows[ox * sw..][..kw];
            *o = window[1..].iter().fold(window[0], |m, &v| larger(m, v));
        }
    }
}

/// [`Pool::backward`] on one plane: its output gradient `grad` (`[H', W']`) added into
/// `input_grad` (`[H, W]`).
#[multiversion(targets = "simd")]
fn max_pool_plane_backward(pool: &Pool, plane: &[f32], grad: &[f32], input_grad: &mut [f32]) {
    let (w, ow) = (pool.width, pool.out_width);
    let [kh, kw] = pool.kernel;
    let [sh, sw] = pool.stride;
    let (mut largest, mut first_row) = (vec![0.0f32; w], vec![0u32; w]);
    // The row's largest and their rows split into the stride's phases, so that each window's
    // `t`-th column is at the same offset in one phase for every window: the choice among
    // the columns vectorises over the windows too.
    let phase_len = w.div_ceil(sw);
    let (mut values, mut rows) = (vec![0.0f32; sw * phase_len], vec![0u32; sw * phase_len]);
    let (mut best, mut best_row, mut best_column) =
        (vec![0.0f32; ow], vec![0u32; ow], vec![0u32; ow]);
    for (oy, grad) in grad.chunks_exact(ow).enumerate() {
        let top = oy * sh;
        largest.copy_from_slice(&plane[top * w..][..w]);
        first_row.fill(0);
        for (i, row) in plane[(top + 1) * w..]
            .chunks_exact(w)
            .take(kh - 1)
            .enumerate()
        {
            // Bit masks, not branches (which the compiler kept, one mispredicted jump per
            // element on random data): the loop vectorises.
            for ((m, r), &v) in largest.iter_mut().zip(&mut first_row).zip(row) {
                let take = 0u32.wrapping_sub(u32::from(beats(v, *m)));
                *m = f32::from_bits((v.to_bits() & take) | (m.to_bits() & !take));
                *r = ((i as u32 + 1) & take) | (*r & !take);
            }
        }
        deinterleave(&largest, &mut values, phase_len);
        deinterleave(&first_row, &mut rows, phase_len);
        best.copy_from_slice(&values[..ow]);
        best_row.copy_from_slice(&rows[..ow]);
        best_column.fill(0);
        // Column by column: the largest wins, on a tie the earlier row, then (as the columns
        // come in order) the earlier column.
        for t in 1..kw {
            let from = (t % sw) * phase_len + t / sw;
            let candidates = values[from..][..ow].iter().zip(&rows[from..][..ow]);
            let bests = best.iter_mut().zip(&mut best_row).zip(&mut best_column);
            for (((m, r), column), (&v, &row)) in bests.zip(candidates) {
                let tie = (v == *m) | (v.is_nan() & m.is_nan());
                let take = 0u32.wrapping_sub(u32::from(beats(v, *m) | (tie & (row < *r))));
                *m = f32::from_bits((v.to_bits() & take) | (m.to_bits() & !take));
                *r = (row & take) | (*r & !take);
                *column = (t as u32 & take) | (*column & !take);
            }
        }
        let windows = grad.iter().zip(&best_row).zip(&best_column).enumerate();
        for (ox, ((g, &row), &column)) in windows {
            input_grad[(top + row as usize) * w + ox * sw + column as usize] += g;
        }
    }
}

/// Whether `candidate` replaces `current` as a window's maximum: larger, or the first NaN.
/// (Bitwise `|` and `&`, not `||` and `&&`: no branches, so the loops over a row vectorise.)
#[inline]
fn beats(candidate: f32, current: f32) -> bool {
    (candidate > current) | (candidate.is_nan() & !current.is_nan())
}

/// `max(a, b)`, NaN if either is (PyTorch's pooling propagates NaN; `f32::max` drops it).
#[inline]
fn larger(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() {
        b
    } else {
        a
    }
}

/// `y = x · (k + α/n · Σ x²)^−β`, the sum over the `n` channels centred on each (zero
/// padded), one output plane per task.
fn local_response_norm(x: &FlexTensor, lrn: &LrnConfig) -> FlexTensor {
    let shape = x.shape();
    let [_, channels, height, width] = shape.dims();
    let plane = height * width;
    let x = f32s(x);
    let half = lrn.size / 2;
    let (scale, k, beta) = (
        (lrn.alpha / lrn.size as f64) as f32,
        lrn.k as f32,
        lrn.beta as f32,
    );
    // s^−0.75 = 1 / (√s · √√s): the paper's β without a general power.
    let inverse_power = |sum: f32| -> f32 {
        let s = k + scale * sum;
        if beta == 0.75 {
            let root = s.sqrt();
            1.0 / (root * root.sqrt())
        } else {
            s.powf(-beta)
        }
    };
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_exact_mut(plane)
        .enumerate()
        .for_each(|(index, y)| {
            let (image, channel) = (index / channels, index % channels);
            let planes = &x[image * channels * plane..][..channels * plane];
            let window = channel.saturating_sub(half)..(channel + half + 1).min(channels);
            let neighbours = &planes[window.start * plane..window.end * plane];
            let centre = &planes[channel * plane..][..plane];
            lrn_plane(y, centre, neighbours, &inverse_power);
        });
    tensor(out, shape)
}

/// One LRN output plane `y = centre · f(Σ neighbours²)` (`neighbours`: the window's planes
/// one after the other; `f` the scaled inverse power).
#[multiversion(targets = "simd")]
fn lrn_plane(y: &mut [f32], centre: &[f32], neighbours: &[f32], f: &impl Fn(f32) -> f32) {
    let mut sums = vec![0.0f32; y.len()];
    for neighbour in neighbours.chunks_exact(y.len()) {
        for (sum, v) in sums.iter_mut().zip(neighbour) {
            *sum += v * v;
        }
    }
    for ((y, v), sum) in y.iter_mut().zip(centre).zip(&sums) {
        *y = v * f(*sum);
    }
}

/// Most elements one patch matrix of several images may hold (4 MiB of `f32`): bounds the
/// weight gradient's memory per thread and keeps its product's operands near the caches
/// (with 16 MiB, the cifar variant's conv2 weight gradient at batch 128 took 68.8 ms per
/// step, with 4 MiB 46.3 ms, with 1 MiB 49.0 ms; per-operation timing).
const CHUNK_ELEMENTS: usize = 1 << 20;

/// Most elements of one band's patch matrix in the forward pass at a column stride > 1 (1
/// MiB of `f32`; see [`Conv::bands`]).
const BAND_ELEMENTS: usize = 1 << 18;

/// Up to this many images, a fully connected layer streams its weights once (a gemm packs
/// them first, which costs more than the product for so few rows).
const SMALL_BATCH: usize = 4;

/// The small-batch fully connected layer sums its weight rows in this many parts.
const FC_PARTS: usize = 8;

/// Patch-matrix columns (output positions) one product takes at least: a layer whose map
/// has fewer puts several images side by side, so that `gemm` packs the weights once for
/// all of them (measured alone, one thread: the cifar variant's 7×7 layers ran at 77–84
/// GFLOP/s one image per product, 92–102 with four).
const TILE_COLUMNS: usize = 160;

/// The weight gradient is summed in this many parts of the batch, in parallel, then in
/// order: a fixed number, so the result does not depend on the thread count.
const WEIGHT_GRAD_PARTS: usize = 8;

/// A convolution's geometry, for one image and one group.
#[derive(Debug, Clone, Copy)]
struct Conv {
    batch: usize,
    groups: usize,
    /// Input channels per group.
    channels: usize,
    /// Output channels per group.
    kernels: usize,
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    out_height: usize,
    out_width: usize,
    /// [`CHUNK_ELEMENTS`] (smaller in tests).
    chunk_elements: usize,
    /// [`BAND_ELEMENTS`] (smaller in tests).
    band_elements: usize,
}

impl Conv {
    /// The geometry of `x` `[N, C, H, W]` convolved with `weight` `[O, C/g, kh, kw]`, or
    /// `None` when this module does not handle it (not `f32`, dilated, or no output).
    fn new(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Self> {
        if x.dtype() != DType::F32 || weight.dtype() != DType::F32 || options.dilation != [1, 1] {
            return None;
        }
        let [batch, in_channels, height, width] = x.shape().dims();
        let [out_channels, channels, kh, kw] = weight.shape().dims();
        let groups = options.groups;
        let [sh, sw] = options.stride;
        let [ph, pw] = options.padding;
        let fits = groups > 0
            && sh > 0
            && sw > 0
            && in_channels == channels * groups
            && out_channels.is_multiple_of(groups)
            && height + 2 * ph >= kh
            && width + 2 * pw >= kw;
        fits.then(|| Self {
            batch,
            groups,
            channels,
            kernels: out_channels / groups,
            height,
            width,
            kernel: [kh, kw],
            stride: [sh, sw],
            padding: [ph, pw],
            out_height: (height + 2 * ph - kh) / sh + 1,
            out_width: (width + 2 * pw - kw) / sw + 1,
            chunk_elements: CHUNK_ELEMENTS,
            band_elements: BAND_ELEMENTS,
        })
    }

    /// Rows of a group's patch matrix: `C/g·kh·kw`.
    fn rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Columns of the patch matrix: output positions `H'·W'`.
    fn cols(&self) -> usize {
        self.out_height * self.out_width
    }

    fn image_len(&self) -> usize {
        self.groups * self.channels * self.height * self.width
    }

    fn out_image_len(&self) -> usize {
        self.groups * self.kernels * self.cols()
    }

    fn out_shape(&self) -> Shape {
        Shape::new([
            self.batch,
            self.groups * self.kernels,
            self.out_height,
            self.out_width,
        ])
    }

    /// Plane length `H·W` of one input channel.
    fn plane(&self) -> usize {
        self.height * self.width
    }

    /// `images` in consecutive runs whose patch matrix stays under `chunk_elements` (at least
    /// one image each).
    fn chunks(&self, images: Range<usize>) -> impl Iterator<Item = Range<usize>> {
        let per_chunk = (self.chunk_elements / (self.rows() * self.cols())).max(1);
        let end = images.end;
        images
            .step_by(per_chunk)
            .map(move |start| start..(start + per_chunk).min(end))
    }

    /// The `(channel, kernel row, kernel column)` of patch-matrix row `row`.
    fn row_origin(&self, row: usize) -> (usize, usize, usize) {
        let [kh, kw] = self.kernel;
        (row / (kh * kw), (row / kw) % kh, row % kw)
    }

    /// Images per product: enough that their output positions reach [`TILE_COLUMNS`] (one
    /// image where its map alone has that many).
    fn tile_images(&self) -> usize {
        TILE_COLUMNS
            .div_ceil(self.cols())
            .clamp(1, self.batch.max(1))
    }

    /// How the products of one task run when there are `tasks` of them: several go in
    /// parallel, one per thread; a single task spreads its products over the threads.
    fn parallelism(tasks: usize) -> Parallelism {
        if tasks > 1 {
            Parallelism::None
        } else {
            Parallelism::Rayon(0)
        }
    }

    /// Calls `f(images, slots, parallelism)` for each tile of `tile` images, in parallel:
    /// `slots` is the tiles' part of `buffer`, which holds `per_image` floats per image.
    fn for_each_tile(
        &self,
        buffer: &mut [f32],
        per_image: usize,
        tile: usize,
        f: impl Fn(Range<usize>, &mut [f32], Parallelism) + Sync,
    ) {
        let parallelism = Self::parallelism(self.batch.div_ceil(tile));
        buffer
            .par_chunks_mut(tile * per_image)
            .enumerate()
            .for_each(|(t, slots)| {
                let images = t * tile..t * tile + slots.len() / per_image;
                f(images, slots, parallelism);
            });
    }

    /// `relu(conv2d(x, weight) + bias)`, `[N, O, H', W']`: Winograd where it
    /// [fits](Self::winograd_fits) ([`winograd`]), im2col + gemm for the others.
    fn forward(&self, x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
        let (x, weight, bias) = (f32s(x), f32s(weight), f32s(bias));
        let mut out = vec![0.0f32; self.batch * self.out_image_len()];
        if self.winograd_fits() {
            self.winograd_forward(&x, &weight, &bias, &mut out);
        } else {
            self.im2col_forward(&x, &weight, &bias, &mut out);
        }
        tensor(out, self.out_shape())
    }

    /// [`forward`](Self::forward) into `out` by im2col + gemm: per tile of
    /// [`tile_images`](Self::tile_images) images and group, one product over the tile's patch
    /// matrices side by side, then bias and ReLU on the way into each image's output.
    fn im2col_forward(&self, x: &[f32], weight: &[f32], bias: &[f32], out: &mut [f32]) {
        let (rows, cols, out_len) = (self.rows(), self.cols(), self.out_image_len());
        self.for_each_tile(
            out,
            out_len,
            self.tile_images(),
            |images, outputs, parallelism| {
                let mut scratch = Scratch::take();
                for ys in self.bands(parallelism) {
                    let band = ys.len() * self.out_width;
                    let width = images.len() * band;
                    let [col, product] = scratch.buffers([rows * width, self.kernels * width]);
                    for g in 0..self.groups {
                        self.im2col_images(x, images.clone(), g, ys.clone(), col);
                        let kernels = g * self.kernels..(g + 1) * self.kernels;
                        // [O/g, rows] · [rows, n·band]
                        let w = &weight[kernels.start * rows..kernels.end * rows];
                        let shape = [self.kernels, width];
                        matmul(
                            product,
                            shape,
                            false,
                            (w, false),
                            (col, false),
                            rows,
                            parallelism,
                        );
                        for (n, output) in outputs.chunks_exact_mut(out_len).enumerate() {
                            let output = &mut output[kernels.start * cols..kernels.end * cols];
                            let sums = product
                                .chunks_exact(width)
                                .map(|row| &row[n * band..][..band]);
                            for ((output, sums), &b) in output
                                .chunks_exact_mut(cols)
                                .zip(sums)
                                .zip(&bias[kernels.clone()])
                            {
                                let output = &mut output[ys.start * self.out_width..][..band];
                                add_bias_relu(output, sums, b);
                            }
                        }
                    }
                }
            },
        );
    }

    /// The output rows the forward pass takes at once: all of them, except at a column
    /// stride > 1 (conv1) in a tile that runs on one thread (`parallelism`), where bands of
    /// rows keep each band's patch matrix within `band_elements` ([`BAND_ELEMENTS`]; near the
    /// caches while `gemm` packs it; conv1's weights are small, so packing them once per band
    /// costs little). (torchvision inference at batch 32: 173 → 176 images/s, paper 143 →
    /// 148; at batch 1, one tile whose products spread over the threads, bands ran 3 %
    /// slower.)
    fn bands(&self, parallelism: Parallelism) -> impl Iterator<Item = Range<usize>> {
        let height = self.out_height;
        let band = if self.stride[1] > 1 && matches!(parallelism, Parallelism::None) {
            (self.band_elements / (self.rows() * self.out_width)).max(1)
        } else {
            height.max(1)
        };
        (0..height)
            .step_by(band)
            .map(move |y| y..(y + band).min(height))
    }

    /// The gradients of [`forward`](Self::forward).
    fn backward(
        &self,
        x: &FlexTensor,
        weight: &FlexTensor,
        output: &FlexTensor,
        output_grad: &FlexTensor,
        x_grad: bool,
    ) -> ConvReluGrads<Flex> {
        let (x, weight) = (f32s(x), f32s(weight));
        let (cols, out_len) = (self.cols(), self.out_image_len());
        let out_channels = self.groups * self.kernels;
        // The ReLU's gradient (zero where the output is) and each image's bias gradient (Σ
        // over its positions), per image in parallel; the images' sums are added in order.
        let mut grad = vec![0.0f32; self.batch * out_len];
        let mut image_bias_grads = vec![0.0f32; self.batch * out_channels];
        grad.par_chunks_exact_mut(out_len)
            .zip(f32s(output).par_chunks_exact(out_len))
            .zip(f32s(output_grad).par_chunks_exact(out_len))
            .zip(image_bias_grads.par_chunks_exact_mut(out_channels))
            .for_each(|(((grad, output), output_grad), bias_grads)| {
                let rows = grad
                    .chunks_exact_mut(cols)
                    .zip(output.chunks_exact(cols))
                    .zip(output_grad.chunks_exact(cols));
                for (((grad, output), output_grad), bias_grad) in rows.zip(bias_grads) {
                    *bias_grad = relu_grad(grad, output, output_grad);
                }
            });
        let bias_grad = add_in_order(out_channels, image_bias_grads.chunks_exact(out_channels));

        // By Winograd where it fits (both gradients at once); else the weights' partial sum
        // per fixed part of the batch, in parallel, then the parts added in order — the same
        // numbers whatever the thread count — and col2im(Wᵀ · grad) per tile of images for the
        // input. The input's is skipped where nobody needs it.
        let mut input_grad = x_grad.then(|| vec![0.0f32; x.len()]);
        let weight_grad = if self.winograd_fits() {
            self.winograd_backward(&x, &weight, &grad, input_grad.as_deref_mut())
        } else {
            if let Some(input_grad) = input_grad.as_deref_mut() {
                self.for_each_tile(
                    input_grad,
                    self.image_len(),
                    self.tile_images(),
                    |images, slots, parallelism| {
                        self.input_grad(&weight, &grad, images, slots, parallelism);
                    },
                );
            }
            let parts = self.batch.min(WEIGHT_GRAD_PARTS);
            let parallelism = Self::parallelism(parts);
            let partials: Vec<Vec<f32>> = (0..parts)
                .into_par_iter()
                .map(|p| {
                    let images = p * self.batch / parts..(p + 1) * self.batch / parts;
                    self.weight_grad(&x, &grad, images, parallelism)
                })
                .collect();
            let transposed = add_in_order(partials[0].len(), partials.iter().map(Vec::as_slice));
            self.untranspose(&transposed)
        };
        let input_grad = input_grad.map(|input_grad| {
            let shape = [
                self.batch,
                self.groups * self.channels,
                self.height,
                self.width,
            ];
            tensor(input_grad, Shape::new(shape))
        });
        ConvReluGrads {
            x: input_grad,
            weight: tensor(
                weight_grad,
                Shape::new([out_channels, self.channels, self.kernel[0], self.kernel[1]]),
            ),
            bias: tensor(bias_grad, Shape::new([out_channels])),
        }
    }

    /// `(Σₙ grad[n] · col[n]ᵀ)ᵀ` over `images`, each group's block transposed (`[C/g·kh·kw,
    /// O/g]`, see [`untranspose`](Self::untranspose)): per chunk and group, the images'
    /// patch matrices side by side (`[rows, n·H'W']`) times the gathered gradient (`[O/g,
    /// n·H'W']`) transposed, one product (`parallelism`: on this thread unless it is the
    /// only part). (`gemm` runs this product up to 18 % faster with the result transposed
    /// than in the weights' own layout: measured alone on the cifar variant's shapes, +18 %
    /// conv1, +17 % conv2, +13 % conv5, ±0 conv4.)
    fn weight_grad(
        &self,
        x: &[f32],
        grad: &[f32],
        images: Range<usize>,
        parallelism: Parallelism,
    ) -> Vec<f32> {
        let (rows, cols) = (self.rows(), self.cols());
        let mut sum = vec![0.0f32; self.groups * rows * self.kernels];
        let mut scratch = Scratch::take();
        for chunk in self.chunks(images) {
            let width = chunk.len() * cols;
            let [col, gathered] = scratch.buffers([rows * width, self.kernels * width]);
            for g in 0..self.groups {
                let kernels = g * self.kernels..(g + 1) * self.kernels;
                self.im2col_images(x, chunk.clone(), g, 0..self.out_height, col);
                self.gather(grad, chunk.clone(), g, gathered);
                matmul(
                    &mut sum[kernels.start * rows..kernels.end * rows],
                    [rows, self.kernels],
                    true,
                    (col, false),
                    (gathered, true),
                    width,
                    parallelism,
                );
            }
        }
        sum
    }

    /// The weights' layout `[O, C/g·kh·kw]` from [`weight_grad`](Self::weight_grad)'s, whose
    /// every group's block is transposed.
    fn untranspose(&self, transposed: &[f32]) -> Vec<f32> {
        let (rows, kernels) = (self.rows(), self.kernels);
        let mut weights = vec![0.0f32; transposed.len()];
        let blocks = weights
            .chunks_exact_mut(rows * kernels)
            .zip(transposed.chunks_exact(rows * kernels));
        for (group, block) in blocks {
            for (r, row) in block.chunks_exact(kernels).enumerate() {
                for (k, &v) in row.iter().enumerate() {
                    group[k * rows + r] = v;
                }
            }
        }
        weights
    }

    /// The input gradients of `images` (their slots in `image_grads`): per group, the
    /// transposed weights times the images' output gradients side by side give their patch
    /// gradients (`[C/g·kh·kw, n·H'W']`), which [`col2im`](Self::col2im) adds back into each
    /// image. (The transposed product, each position's patch gradient in a row, ran faster in
    /// `gemm` alone, but its col2im reads with a stride: measured slower in the training
    /// step, conv2's input gradient 13.7 → 17.6 ms.)
    fn input_grad(
        &self,
        weight: &[f32],
        grad: &[f32],
        images: Range<usize>,
        image_grads: &mut [f32],
        parallelism: Parallelism,
    ) {
        let (rows, cols) = (self.rows(), self.cols());
        let width = images.len() * cols;
        let mut scratch = Scratch::take();
        let [gathered, patch_grads] = scratch.buffers([self.kernels * width, width * rows]);
        for g in 0..self.groups {
            let kernels = g * self.kernels..(g + 1) * self.kernels;
            let w = &weight[kernels.start * rows..kernels.end * rows];
            self.gather(grad, images.clone(), g, gathered);
            // [rows, O/g] · [O/g, n·H'W']
            matmul(
                patch_grads,
                [rows, width],
                false,
                (w, true),
                (gathered, false),
                self.kernels,
                parallelism,
            );
            for (n, image_grad) in image_grads.chunks_exact_mut(self.image_len()).enumerate() {
                self.col2im(&mut patch_grads[n * cols..], width, g, image_grad);
            }
        }
    }

    /// The patch matrices of `images` for group `group`, side by side in `col` (`[rows,
    /// n·H'W']`).
    fn im2col_images(
        &self,
        x: &[f32],
        images: Range<usize>,
        group: usize,
        ys: Range<usize>,
        col: &mut [f32],
    ) {
        let (band, image_len) = (ys.len() * self.out_width, self.image_len());
        let width = images.len() * band;
        for (n, image) in images.enumerate() {
            let input = &x[image * image_len..][..image_len];
            self.im2col(input, group, ys.clone(), &mut col[n * band..], width);
        }
    }

    /// Group `group`'s output gradients of `images`, side by side in `gathered` (`[O/g,
    /// n·H'W']`).
    fn gather(&self, grad: &[f32], images: Range<usize>, group: usize, gathered: &mut [f32]) {
        let (cols, out_len) = (self.cols(), self.out_image_len());
        let width = images.len() * cols;
        for (n, image) in images.enumerate() {
            let grad = &grad[image * out_len + group * self.kernels * cols..];
            for (k, src) in grad.chunks_exact(cols).take(self.kernels).enumerate() {
                gathered[k * width + n * cols..][..cols].copy_from_slice(src);
            }
        }
    }

    /// The output columns `x'` whose input column `x'·s + j − p` lies inside `0..len`, for
    /// kernel offset `j`: `start..end` (maybe empty).
    fn inside(j: usize, stride: usize, pad: usize, len: usize, out_len: usize) -> Range<usize> {
        let start = pad.saturating_sub(j).div_ceil(stride).min(out_len);
        let end = (len + pad).saturating_sub(j).div_ceil(stride).min(out_len);
        start..end.max(start)
    }

    /// Calls `visit(y', iy, x'-range, ix of its first)` for every output row `y'` whose input
    /// row `iy = y'·s + i − p` lies inside the image, for kernel offset `(i, j)`; the x'-range
    /// is where the input column lies inside too (it is not empty).
    fn for_each_span(
        &self,
        i: usize,
        j: usize,
        mut visit: impl FnMut(usize, usize, Range<usize>, usize),
    ) {
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        let span = Self::inside(j, sw, pw, self.width, self.out_width);
        if span.is_empty() {
            return;
        }
        let first_ix = span.start * sw + j - pw;
        for y in 0..self.out_height {
            let iy = (y * sh + i).wrapping_sub(ph);
            if iy < self.height {
                visit(y, iy, span.clone(), first_ix);
            }
        }
    }

    /// One image's patch matrix for group `group`: `col[(c, i, j), (y', x')] =
    /// image[c, y'·s + i − p, x'·s + j − p]`, 0 outside the image; row `r` starts at
    /// `col[r · row_stride]` (images side by side when the stride is wider than `H'W'`).
    fn im2col(
        &self,
        image: &[f32],
        group: usize,
        ys: Range<usize>,
        col: &mut [f32],
        row_stride: usize,
    ) {
        if self.stride[1] > 1 {
            return self.im2col_strided(image, group, ys, col, row_stride);
        }
        assert_eq!(ys, 0..self.out_height, "bands only at a column stride > 1");
        let (cols, plane, w, ow) = (self.cols(), self.plane(), self.width, self.out_width);
        for row in 0..self.rows() {
            let (c, i, j) = self.row_origin(row);
            let input = &image[(group * self.channels + c) * plane..][..plane];
            let dst = &mut col[row * row_stride..][..cols];
            if let Some(run) = self.run_inside(i, j) {
                let end = run.row + run.len;
                dst[..run.row].fill(0.0);
                dst[end..].fill(0.0);
                dst[run.row..end].copy_from_slice(&input[run.plane..][..run.len]);
                run.zero_wrapped(dst);
                continue;
            }
            dst.fill(0.0);
            self.for_each_span(i, j, |y, iy, span, first_ix| {
                let dst = &mut dst[y * ow..][span];
                dst.copy_from_slice(&input[iy * w + first_ix..][..dst.len()]);
            });
        }
    }

    /// [`im2col`](Self::im2col) at a column stride `s` > 1 (conv1's 4): each input row that
    /// an output row reads is split once into its `s` phases (`phase p = row[p], row[p + s],
    /// …`), after which every kernel column's span is one contiguous copy from a phase (not a
    /// strided gather per kernel column: 11 of them per row in conv1). Every entry is written
    /// once, zeros outside the image included.
    fn im2col_strided(
        &self,
        image: &[f32],
        group: usize,
        ys: Range<usize>,
        col: &mut [f32],
        row_stride: usize,
    ) {
        let (plane, w, ow) = (self.plane(), self.width, self.out_width);
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let phase_len = w.div_ceil(sw);
        let mut phases = vec![0.0f32; sw * phase_len];
        // Per kernel column: its span of output columns inside the image and where that span
        // starts in its phase.
        let spans: Vec<(Range<usize>, usize)> = (0..kw)
            .map(|j| {
                let span = Self::inside(j, sw, self.padding[1], w, ow);
                let first_ix = (span.start * sw + j).saturating_sub(self.padding[1]);
                (span, (first_ix % sw) * phase_len + first_ix / sw)
            })
            .collect();
        for c in 0..self.channels {
            let input = &image[(group * self.channels + c) * plane..][..plane];
            for i in 0..kh {
                let first_row = (c * kh + i) * kw;
                for (row, y) in ys.clone().enumerate() {
                    let iy = (y * sh + i).wrapping_sub(self.padding[0]);
                    let inside = iy < self.height;
                    if inside {
                        deinterleave(&input[iy * w..][..w], &mut phases, phase_len);
                    }
                    for (j, (span, from)) in spans.iter().enumerate() {
                        let dst = &mut col[(first_row + j) * row_stride + row * ow..][..ow];
                        if !inside || span.is_empty() {
                            dst.fill(0.0);
                            continue;
                        }
                        dst[..span.start].fill(0.0);
                        dst[span.end..].fill(0.0);
                        dst[span.clone()].copy_from_slice(&phases[*from..][..span.len()]);
                    }
                }
            }
        }
    }

    /// For a convolution at stride 1 whose output is as wide as its input (padding
    /// `(kw − 1)/2`: every cifar convolution, conv2–5 of the others), the entries of
    /// patch-matrix row `(i, j)` inside the image as one run: consecutive output rows read
    /// consecutive input rows at the same offset, so a row's im2col is one copy and its col2im
    /// one addition (not one per output row, each a few floats). `None` for other
    /// convolutions.
    fn run_inside(&self, i: usize, j: usize) -> Option<Run> {
        let (w, [ph, pw]) = (self.width, self.padding);
        if self.stride != [1, 1] || self.out_width != w {
            return None;
        }
        let ys = Self::inside(i, 1, ph, self.height, self.out_height);
        let xs = Self::inside(j, 1, pw, w, w);
        // From (first row inside, first column inside) to (last row, last column) inside.
        let (row, plane, len) = if ys.is_empty() || xs.is_empty() {
            (0, 0, 0)
        } else {
            (
                ys.start * w + xs.start,
                (ys.start + i - ph) * w + xs.start + j - pw,
                (ys.len() - 1) * w + xs.len(),
            )
        };
        Some(Run {
            row,
            plane,
            len,
            width: w,
            ys,
            xs,
        })
    }

    /// The adjoint of [`im2col`](Self::im2col) for one image: adds each entry of its patch
    /// gradients (`[rows, H'W']`, row `r` starting at `col[r · row_stride]`; the entries
    /// whose input lies outside the image are zeroed on the way) back to the input position
    /// it came from in `image_grad`.
    fn col2im(&self, col: &mut [f32], row_stride: usize, group: usize, image_grad: &mut [f32]) {
        let (cols, plane, w, ow) = (self.cols(), self.plane(), self.width, self.out_width);
        let sw = self.stride[1];
        for row in 0..self.rows() {
            let src = &mut col[row * row_stride..][..cols];
            let (c, i, j) = self.row_origin(row);
            let input = &mut image_grad[(group * self.channels + c) * plane..][..plane];
            if let Some(run) = self.run_inside(i, j) {
                run.zero_wrapped(src);
                let (dst, src) = (
                    &mut input[run.plane..][..run.len],
                    &src[run.row..][..run.len],
                );
                add_assign(dst, src);
                continue;
            }
            self.for_each_span(i, j, |y, iy, span, first_ix| {
                let dst = &mut input[iy * w + first_ix..];
                let src = &src[y * ow..][span];
                if sw == 1 {
                    // Contiguous on both sides: one vectorised pass.
                    add_assign(&mut dst[..src.len()], src);
                } else {
                    for (k, s) in src.iter().enumerate() {
                        dst[k * sw] += s;
                    }
                }
            });
        }
    }
}

/// A patch-matrix row's entries inside the image as one run (see [`Conv::run_inside`]):
/// `row[self.row..][..len]` pairs with `plane[self.plane..][..len]`, except the entries whose
/// column lies outside the image, which the run wraps onto the neighbouring row's edge.
#[derive(Debug, Clone)]
struct Run {
    /// Where the run starts in the patch-matrix row (`[H', W']`).
    row: usize,
    /// Where it starts in the input plane (`[H, W]`).
    plane: usize,
    len: usize,
    /// Row width (input and output alike).
    width: usize,
    /// Output rows inside the image.
    ys: Range<usize>,
    /// Output columns inside the image.
    xs: Range<usize>,
}

impl Run {
    /// Zeroes the entries of patch-matrix row `row` whose column lies outside the image, in
    /// the rows inside it (a strided pass per column: per row, each is 1–2 floats).
    fn zero_wrapped(&self, row: &mut [f32]) {
        for x in (0..self.xs.start).chain(self.xs.end..self.width) {
            for y in self.ys.clone() {
                row[y * self.width + x] = 0.0;
            }
        }
    }
}

thread_local! {
    /// This thread's [`Scratch`] buffers, while no call holds them.
    static SCRATCH_BUFFERS: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
}

/// Working buffers a thread reuses from call to call: the patch matrices, gathered gradients
/// and products (megabytes, in every layer of every step), instead of a fresh zero-filled
/// allocation each time (which spent 8 % of a cifar training step in `memset`, `perf`).
/// They hold whatever their last user left (NaN in debug builds, so that a read before a
/// write shows in the tests): each user writes every entry before reading it. A thread
/// keeps the largest it has needed (a few MiB: a chunk of [`CHUNK_ELEMENTS`] and its
/// companion, or one large image's patch matrix).
struct Scratch(Vec<Vec<f32>>);

impl Scratch {
    /// This thread's buffers (new ones if a caller further up this thread holds them).
    fn take() -> Self {
        Self(SCRATCH_BUFFERS.take())
    }

    /// `N` buffers of the given lengths.
    fn buffers<const N: usize>(&mut self, lens: [usize; N]) -> [&mut [f32]; N] {
        if self.0.len() < N {
            self.0.resize_with(N, Vec::new);
        }
        let mut buffers = self.0.iter_mut().zip(lens).map(|(buffer, len)| {
            if buffer.len() < len {
                *buffer = vec![0.0; len];
            }
            let buffer = &mut buffer[..len];
            if cfg!(debug_assertions) {
                buffer.fill(f32::NAN);
            }
            buffer
        });
        std::array::from_fn(|_| buffers.next().expect("N buffers"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        SCRATCH_BUFFERS.set(std::mem::take(&mut self.0));
    }
}

/// `row` split into its phases, `phase_len` apart in `phases`: `phases[p · phase_len + q] =
/// row[q · s + p]` for `s = phases.len() / phase_len`.
#[inline]
fn deinterleave<T: Copy>(row: &[T], phases: &mut [T], phase_len: usize) {
    let stride = phases.len() / phase_len;
    for (q, chunk) in row.chunks(stride).enumerate() {
        for (p, &v) in chunk.iter().enumerate() {
            phases[p * phase_len + q] = v;
        }
    }
}

/// `dst += src`, element by element.
#[multiversion(targets = "simd")]
fn add_assign(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
}

/// `output = max(sums + bias, 0)`: a convolution's bias and ReLU.
#[multiversion(targets = "simd")]
fn add_bias_relu(output: &mut [f32], sums: &[f32], bias: f32) {
    for (o, &v) in output.iter_mut().zip(sums) {
        *o = (v + bias).max(0.0);
    }
}

/// The ReLU's gradient: `grad = output_grad` where `output > 0`, else 0; returns `Σ grad`
/// (the bias gradient's share of this plane).
#[multiversion(targets = "simd")]
fn relu_grad(grad: &mut [f32], output: &[f32], output_grad: &[f32]) -> f32 {
    for ((g, &y), &dy) in grad.iter_mut().zip(output).zip(output_grad) {
        *g = if y > 0.0 { dy } else { 0.0 };
    }
    sum(grad)
}

/// The element-wise sum of `parts` (each `len` long), added in the order given: the same
/// numbers whatever the thread count that made the parts.
fn add_in_order<'a>(len: usize, parts: impl IntoIterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut total = vec![0.0f32; len];
    for part in parts {
        add_assign(&mut total, part);
    }
    total
}

/// `Σ values`, in 16 interleaved partial sums (which vectorise; a plain `f32` sum is one
/// serial chain of additions) that are then added in order.
#[inline]
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder().iter().sum::<f32>();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v);
    }
    lanes.iter().sum::<f32>() + rest
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]`, all row-major; a `true` flag reads that operand
/// transposed (stored `[k, m]` / `[n, k]`).
fn matmul(
    dst: &mut [f32],
    [m, n]: [usize; 2],
    accumulate: bool,
    (lhs, lhs_t): (&[f32], bool),
    (rhs, rhs_t): (&[f32], bool),
    k: usize,
    parallelism: Parallelism,
) {
    // (row stride, column stride) of a row-major matrix with `cols` columns, or of its
    // transpose.
    let strides = |cols: usize, transposed: bool| {
        if transposed {
            (1, cols)
        } else {
            (cols, 1)
        }
    };
    let (lhs_rs, lhs_cs) = strides(if lhs_t { m } else { k }, lhs_t);
    let (rhs_rs, rhs_cs) = strides(if rhs_t { k } else { n }, rhs_t);
    strided_matmul(
        dst,
        [m, n],
        accumulate,
        (lhs, lhs_rs, lhs_cs),
        (rhs, rhs_rs, rhs_cs),
        k,
        parallelism,
    );
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]`, `dst` row-major, each operand given with its
/// (row stride, column stride): the one place that calls `gemm`.
fn strided_matmul(
    dst: &mut [f32],
    [m, n]: [usize; 2],
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
    k: usize,
    parallelism: Parallelism,
) {
    // Elements a `[rows, cols]` operand with these strides spans.
    let span = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(dst.len() >= m * n);
    assert!(lhs.len() >= span(m, k, lhs_rs, lhs_cs));
    assert!(rhs.len() >= span(k, n, rhs_rs, rhs_cs));
    // SAFETY: the asserts bound every element the strides address; `dst` does not alias the
    // operands (it is a `&mut`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A tensor's elements, row-major (a copy only when it is a strided view).
fn f32s(tensor: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(
            tensor
                .to_contiguous()
                .as_slice::<f32>()
                .expect("a contiguous f32 tensor")
                .to_vec(),
        ),
    }
}

/// A contiguous `f32` tensor of `shape` holding `data`.
fn tensor(data: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        DType::F32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// Values spread over [-1, 1) in a scrambled order.
    fn random(shape: [usize; 4], seed: usize) -> FlexTensor {
        let n = shape.iter().product::<usize>();
        let values = (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect::<Vec<_>>();
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    fn values(tensor: &FlexTensor) -> Vec<f32> {
        f32s(tensor).into_owned()
    }

    fn assert_close(a: &[f32], b: &[f32]) {
        let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-5 * scale, "max diff {diff} (scale {scale})");
    }

    /// A NaN in a window makes its maximum NaN, as in PyTorch, and takes the gradient.
    #[test]
    fn max_pool_propagates_nan() {
        let mut pixels = vec![1.0f32; 25];
        pixels[6] = f32::NAN; // row 1, column 1: in the first window only
        let x = FlexTensor::from_data(TensorData::new(pixels, [1, 1, 5, 5]));
        let pool = Pool::new(&x, [3, 3], [2, 2]).unwrap();
        let out = values(&pool.forward(&x));
        assert!(out[0].is_nan());
        assert_eq!(&out[1..], &[1.0, 1.0, 1.0]);
        let grad = FlexTensor::from_data(TensorData::new(vec![1.0f32; 4], [1, 1, 2, 2]));
        assert_eq!(values(&pool.backward(&x, &grad))[6], 1.0);
    }

    /// A strided convolution's forward pass in bands of one or two output rows gives what
    /// whole images give.
    #[test]
    fn bands_equal_whole_images() {
        let x = random([13, 4, 11, 13], 4); // tiles of 6, 6 and 1 images: each on one thread
        let weight = random([6, 2, 3, 5], 5);
        let bias = FlexTensor::from_data(TensorData::new(vec![0.1f32; 6], [6]));
        let options = ConvOptions::new([2, 3], [1, 2], [1, 1], 2);
        let whole = Conv {
            band_elements: usize::MAX,
            ..Conv::new(&x, &weight, &options).unwrap()
        };
        let expected = values(&whole.forward(&x, &weight, &bias));
        for rows in [1, 2] {
            let banded = Conv {
                band_elements: rows * whole.rows() * whole.out_width,
                ..whole
            };
            assert_eq!(
                banded.bands(Parallelism::None).count(),
                whole.out_height.div_ceil(rows)
            );
            assert_eq!(values(&banded.forward(&x, &weight, &bias)), expected);
        }
    }

    /// Weight-gradient parts split into chunks of one or two images give what whole parts
    /// give.
    #[test]
    fn chunked_batches_equal_one_chunk() {
        // 17 images: the weight gradient's parts hold two or three, then split in chunks.
        let x = random([17, 4, 9, 9], 1);
        let weight = random([6, 2, 3, 3], 2);
        let bias = FlexTensor::from_data(TensorData::new(vec![0.1f32; 6], [6]));
        let options = ConvOptions::new([2, 1], [1, 1], [1, 1], 2);
        let whole = Conv::new(&x, &weight, &options).unwrap();
        let per_image = whole.rows() * whole.cols();
        let output = whole.forward(&x, &weight, &bias);
        let output_grad = random([17, 6, 5, 9], 3);
        let expected = whole.backward(&x, &weight, &output, &output_grad, true);
        for images in [1, 2] {
            let chunked = Conv {
                chunk_elements: images * per_image,
                ..whole
            };
            assert_eq!(chunked.chunks(0..17).count(), 17usize.div_ceil(images));
            assert_close(
                &values(&chunked.forward(&x, &weight, &bias)),
                &values(&output),
            );
            let grads = chunked.backward(&x, &weight, &output, &output_grad, true);
            assert_close(&values(&grads.weight), &values(&expected.weight));
            assert_close(&values(&grads.bias), &values(&expected.bias));
            assert_close(
                &values(grads.x.as_ref().unwrap()),
                &values(expected.x.as_ref().unwrap()),
            );
        }
    }
}
