//! [`AlexNetBackend`] for Flex, on its tensors' `f32` buffers.
//!
//! The convolution is Caffe's: per image and group, `im2col` lays the input patches out as
//! a `[C/g·kh·kw, H'·W']` matrix, and one gemm (the `gemm` crate, which Flex itself uses)
//! multiplies the `[O/g, C/g·kh·kw]` weights by it, straight into the NCHW output, bias
//! included; the ReLU is applied in the same pass. Flex's own convolution converts every
//! input to NHWC, tiles the output, and adds bias and ReLU in separate passes; its backward
//! pass is Burn's generic one (transposed convolutions). Here the backward pass is the
//! adjoint of the same three steps: the weight gradient is `grad · colᵀ` (summed over the
//! images in order, so it is deterministic), the input gradient is `col2im(Wᵀ · grad)`,
//! skipped where nobody needs it (conv1's input).
//!
//! LRN sums the squares of each output plane's neighbouring channel planes directly (Burn's
//! composition transposes the activations to average-pool across channels).
//!
//! Anything else (another dtype, dilation, an even LRN size) takes the plain Burn
//! composition.

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::Flex;
use burn::tensor::ops::{ActivationOps, ConvOptions, FloatTensor, ModuleOps};
use burn::tensor::{Bytes, DType, Shape, Tensor, TensorMetadata, TensorPrimitive};
use gemm::Parallelism;
use rayon::prelude::*;

use super::{AlexNetBackend, ConvReluGrads};
use crate::config::LrnConfig;

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

    fn local_response_norm(x: FloatTensor<Self>, lrn: &LrnConfig) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 || x.shape().num_dims() != 4 || lrn.size % 2 == 0 {
            let x = Tensor::<Self, 4>::from_primitive(TensorPrimitive::Float(x));
            return lrn
                .burn_config()
                .init()
                .forward(x)
                .into_primitive()
                .tensor();
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
    let inverse_power = |s: f32| -> f32 {
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
            let mut sums = vec![0.0f32; plane];
            for c in window {
                for (sum, v) in sums.iter_mut().zip(&planes[c * plane..][..plane]) {
                    *sum += v * v;
                }
            }
            let centre = &planes[channel * plane..][..plane];
            for ((y, v), sum) in y.iter_mut().zip(centre).zip(&sums) {
                *y = v * inverse_power(k + scale * sum);
            }
        });
    tensor(out, shape)
}

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
            && out_channels % groups == 0
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

    /// `relu(conv2d(x, weight) + bias)`, `[N, O, H', W']`.
    fn forward(&self, x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
        let (x, weight, bias) = (f32s(x), f32s(weight), f32s(bias));
        let (rows, cols) = (self.rows(), self.cols());
        let mut out = vec![0.0f32; self.batch * self.out_image_len()];
        let image = |(input, output): (&[f32], &mut [f32]), parallelism| {
            let mut col = vec![0.0f32; rows * cols];
            for g in 0..self.groups {
                self.im2col(
                    &input[g * self.channels * self.height * self.width..],
                    &mut col,
                );
                let kernels = g * self.kernels..(g + 1) * self.kernels;
                let out = &mut output[kernels.start * cols..kernels.end * cols];
                for (row, b) in out.chunks_exact_mut(cols).zip(&bias[kernels.clone()]) {
                    row.fill(*b);
                }
                let w = &weight[kernels.start * rows..kernels.end * rows];
                matmul(
                    out,
                    [self.kernels, cols],
                    true,
                    (w, false),
                    (&col, false),
                    rows,
                    parallelism,
                );
            }
            output.iter_mut().for_each(|v| *v = v.max(0.0));
        };
        let (image_len, out_len) = (self.image_len(), self.out_image_len());
        if self.batch > 1 {
            // Images in parallel, each gemm on one thread.
            x.par_chunks_exact(image_len)
                .zip(out.par_chunks_exact_mut(out_len))
                .for_each(|pair| image(pair, Parallelism::None));
        } else {
            x.chunks_exact(image_len)
                .zip(out.chunks_exact_mut(out_len))
                .for_each(|pair| image(pair, Parallelism::Rayon(0)));
        }
        tensor(out, self.out_shape())
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
        let (rows, cols) = (self.rows(), self.cols());
        let out_channels = self.groups * self.kernels;
        // The ReLU's gradient: zero where the output is.
        let grad: Vec<f32> = f32s(output)
            .iter()
            .zip(f32s(output_grad).iter())
            .map(|(&y, &g)| if y > 0.0 { g } else { 0.0 })
            .collect();

        // Bias: Σ over images and positions, in order.
        let mut bias_grad = vec![0.0f32; out_channels];
        for image in grad.chunks_exact(self.out_image_len()) {
            for (sum, row) in bias_grad.iter_mut().zip(image.chunks_exact(cols)) {
                *sum += row.iter().sum::<f32>();
            }
        }

        // Weights: Σₙ grad[n] · col[n]ᵀ per group, images in order; gemm splits each
        // product across threads without splitting the sum, so the result is deterministic.
        let mut weight_grad = vec![0.0f32; out_channels * rows];
        let mut col = vec![0.0f32; rows * cols];
        for (n, (input, grad)) in x
            .chunks_exact(self.image_len())
            .zip(grad.chunks_exact(self.out_image_len()))
            .enumerate()
        {
            for g in 0..self.groups {
                self.im2col(
                    &input[g * self.channels * self.height * self.width..],
                    &mut col,
                );
                let kernels = g * self.kernels..(g + 1) * self.kernels;
                matmul(
                    &mut weight_grad[kernels.start * rows..kernels.end * rows],
                    [self.kernels, rows],
                    n > 0,
                    (&grad[kernels.start * cols..kernels.end * cols], false),
                    (&col, true),
                    cols,
                    Parallelism::Rayon(0),
                );
            }
        }

        // Input: col2im(Wᵀ · grad[n]) per image and group, images in parallel.
        let x_grad = x_grad.then(|| {
            let mut x_grad = vec![0.0f32; self.batch * self.image_len()];
            x_grad
                .par_chunks_exact_mut(self.image_len())
                .zip(grad.par_chunks_exact(self.out_image_len()))
                .for_each(|(input_grad, grad)| {
                    let mut col = vec![0.0f32; rows * cols];
                    for g in 0..self.groups {
                        let kernels = g * self.kernels..(g + 1) * self.kernels;
                        matmul(
                            &mut col,
                            [rows, cols],
                            false,
                            (&weight[kernels.start * rows..kernels.end * rows], true),
                            (&grad[kernels.start * cols..kernels.end * cols], false),
                            self.kernels,
                            Parallelism::None,
                        );
                        let plane = self.channels * self.height * self.width;
                        self.col2im(&col, &mut input_grad[g * plane..(g + 1) * plane]);
                    }
                });
            tensor(
                x_grad,
                Shape::new([
                    self.batch,
                    self.groups * self.channels,
                    self.height,
                    self.width,
                ]),
            )
        });
        ConvReluGrads {
            x: x_grad,
            weight: tensor(
                weight_grad,
                Shape::new([out_channels, self.channels, self.kernel[0], self.kernel[1]]),
            ),
            bias: tensor(bias_grad, Shape::new([out_channels])),
        }
    }

    /// The output columns `x'` whose input column `x'·s + j − p` lies inside `0..len`, for
    /// kernel offset `j`: `start..end` (maybe empty).
    fn inside(j: usize, stride: usize, pad: usize, len: usize, out_len: usize) -> (usize, usize) {
        let start = pad.saturating_sub(j).div_ceil(stride).min(out_len);
        let end = (len + pad).saturating_sub(j).div_ceil(stride).min(out_len);
        (start, end.max(start))
    }

    /// Calls `visit(row, y', iy, x'-range, ix of the first)` for every patch-matrix row and
    /// output row whose input row `iy` lies inside the image; the x'-range is where the input
    /// column is inside too. What im2col copies and col2im adds back.
    fn for_each_span(&self, mut visit: impl FnMut(usize, usize, usize, (usize, usize), usize)) {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        for c in 0..self.channels {
            for i in 0..kh {
                for j in 0..kw {
                    let row = (c * kh + i) * kw + j;
                    let span = Self::inside(j, sw, pw, self.width, self.out_width);
                    if span.0 == span.1 {
                        continue;
                    }
                    let first_ix = span.0 * sw + j - pw;
                    for y in 0..self.out_height {
                        let iy = (y * sh + i).wrapping_sub(ph);
                        if iy < self.height {
                            visit(row, y, c * self.height + iy, span, first_ix);
                        }
                    }
                }
            }
        }
    }

    /// `col[(c, i, j), (y', x')] = input[c, y'·s + i − p, x'·s + j − p]`, 0 outside the image.
    /// `input`: one group's `[C/g, H, W]`; `col`: `[rows, cols]`.
    fn im2col(&self, input: &[f32], col: &mut [f32]) {
        col.fill(0.0);
        let (w, ow, sw) = (self.width, self.out_width, self.stride[1]);
        self.for_each_span(|row, y, input_row, (start, end), first_ix| {
            let dst = &mut col[row * self.cols() + y * ow..][start..end];
            let src = &input[input_row * w + first_ix..];
            if sw == 1 {
                dst.copy_from_slice(&src[..dst.len()]);
            } else {
                for (k, d) in dst.iter_mut().enumerate() {
                    *d = src[k * sw];
                }
            }
        });
    }

    /// The adjoint of [`im2col`](Self::im2col): adds each column entry back to the input
    /// position it was copied from. `input_grad`: one group's `[C/g, H, W]`.
    fn col2im(&self, col: &[f32], input_grad: &mut [f32]) {
        let (w, ow, sw) = (self.width, self.out_width, self.stride[1]);
        self.for_each_span(|row, y, input_row, (start, end), first_ix| {
            let src = &col[row * self.cols() + y * ow..][start..end];
            let dst = &mut input_grad[input_row * w + first_ix..];
            for (k, s) in src.iter().enumerate() {
                dst[k * sw] += s;
            }
        });
    }
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
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n);
    // (row stride, column stride) of a row-major matrix with `cols` columns, or of its
    // transpose.
    let strides = |cols: usize, transposed: bool| -> (isize, isize) {
        if transposed {
            (1, cols as isize)
        } else {
            (cols as isize, 1)
        }
    };
    let (lhs_rs, lhs_cs) = strides(if lhs_t { m } else { k }, lhs_t);
    let (rhs_rs, rhs_cs) = strides(if rhs_t { k } else { n }, rhs_t);
    // SAFETY: the lengths are checked above; the strides address row-major matrices of
    // exactly those shapes, and `dst` does not alias the operands (it is a `&mut`).
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
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
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
