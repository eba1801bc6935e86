//! 3×3 and 5×5 convolutions at stride 1 by Winograd's minimal filtering F(2×2, r×r) (Lavin &
//! Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2×2 block of
//! outputs from its `α×α` input patch `d` (`α = r + 1`) and the `r×r` kernel `g` as
//! `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, `α²` products instead of `4r²` (16 instead of 36 for 3×3,
//! 36 instead of 100 for 5×5). Over channels the element-wise products become `α²` matrix
//! products, one per entry `ξ` of the `α×α` transforms: `M[ξ] = U[ξ] · V[ξ]`, `[O/g, C/g]`
//! kernels times `[C/g, tiles]` patches. The input and output transforms have small integer
//! coefficients (exact but for the sums' rounding), so the outputs match the direct
//! convolution to a few units in the last place for 3×3 and to about 1e-6 relative for 5×5
//! (`winograd_equals_im2col`).
//!
//! AlexNet's conv3–conv5 (13×13 maps in the ImageNet variants, 7×7 in cifar) are 3×3
//! convolutions and hold half of the torchvision variant's multiply-adds, which this cuts by
//! 1.9× (13×13: 7×7 blocks of 2×2 cover 14×14); conv2 is 5×5 (27×27 maps, 15×15 in cifar):
//! 2.5× fewer (27×27: 14×14 blocks cover 28×28).

use std::ops::Range;

use gemm::Parallelism;
use rayon::prelude::*;

use multiversion::multiversion;

use super::{add_bias_relu, strided_matmul, Conv, Scratch};

/// A Winograd algorithm F(2×2, r×r): its three transforms, row-major. Built by Toom–Cook on
/// the points 0, ±1 (and ±2 for r = 5) and ∞.
pub(super) struct Algorithm {
    /// The kernel's side `r`.
    r: usize,
    /// `Bᵀ`, `[α, α]`: an input patch `d` → `Bᵀ d B`.
    input: &'static [f32],
    /// `G`, `[α, r]`: a kernel `g` → `G g Gᵀ`.
    kernel: &'static [f32],
    /// `Aᵀ`, `[2, α]`: a block of products `m` → its 2×2 outputs `Aᵀ m A`.
    output: &'static [f32],
}

impl Algorithm {
    /// The transforms' side `α = r + 1`.
    fn alpha(&self) -> usize {
        self.r + 1
    }

    /// Entries `ξ` of an `α×α` transform: the number of matrix products.
    fn entries(&self) -> usize {
        self.alpha() * self.alpha()
    }
}

/// F(2×2, 3×3).
#[rustfmt::skip]
const F2X3: Algorithm = Algorithm {
    r: 3,
    input: &[
        1.0, 0.0, -1.0, 0.0,
        0.0, 1.0, 1.0, 0.0,
        0.0, -1.0, 1.0, 0.0,
        0.0, 1.0, 0.0, -1.0,
    ],
    kernel: &[
        1.0, 0.0, 0.0,
        0.5, 0.5, 0.5,
        0.5, -0.5, 0.5,
        0.0, 0.0, 1.0,
    ],
    output: &[
        1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, -1.0,
    ],
};

/// F(2×2, 5×5) on the points 0, 1, −1, 2, −2, ∞.
#[rustfmt::skip]
const F2X5: Algorithm = Algorithm {
    r: 5,
    input: &[
        4.0, 0.0, -5.0, 0.0, 1.0, 0.0,
        0.0, -4.0, -4.0, 1.0, 1.0, 0.0,
        0.0, 4.0, -4.0, -1.0, 1.0, 0.0,
        0.0, -2.0, -1.0, 2.0, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, 4.0, 0.0, -5.0, 0.0, 1.0,
    ],
    kernel: &[
        1.0 / 4.0, 0.0, 0.0, 0.0, 0.0,
        -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0,
        -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0,
        1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0, 1.0 / 3.0, 2.0 / 3.0,
        1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0, -1.0 / 3.0, 2.0 / 3.0,
        0.0, 0.0, 0.0, 0.0, 1.0,
    ],
    output: &[
        1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, -2.0, 1.0,
    ],
};

/// Output positions per image from which Winograd runs faster than im2col + gemm, measured:
/// on the ImageNet variants' 13×13 maps it does (torchvision training step at batch 32 49–50
/// → 51–53 images/s with the input gradient too), on the cifar variant's 7×7 it does not
/// (cifar training step at batch 32: 454–460 images/s with it, 464–470 without on a Xeon,
/// 265 against 283 on an AMD EPYC; 7×7 needs 4×4 blocks, which cover 8×8).
const MIN_POSITIONS: usize = 100;

/// Channels per group (the products' depth) from which Winograd runs: the cifar variant's
/// conv1 (3 input channels, 5×5 on 32×32) took 3.1 ms by Winograd against 2.1 by im2col
/// (forward at batch 32, per-operation timing); conv2 and later have 48 or more.
const MIN_DEPTH: usize = 16;

/// Output blocks (matrix-product columns) a tile of images reaches at least (rounded up to a
/// power of two of images, so that batches of a power of two split evenly): a product of a
/// single 13×13 image (49 blocks) is too narrow for `gemm` to run at speed.
const BLOCK_COLUMNS: usize = 196;

impl Conv {
    /// The algorithm for this convolution's kernel: 3×3 or 5×5 at stride 1; `None` for any
    /// other.
    fn algorithm(&self) -> Option<&'static Algorithm> {
        match (self.kernel, self.stride) {
            ([3, 3], [1, 1]) => Some(&F2X3),
            ([5, 5], [1, 1]) => Some(&F2X5),
            _ => None,
        }
    }

    /// Whether [`winograd_forward`](Self::winograd_forward) computes this convolution: one
    /// it has an [`Algorithm`] for, on maps of at least [`MIN_POSITIONS`] outputs, with at
    /// least [`MIN_DEPTH`] input channels per group.
    pub(super) fn winograd_fits(&self) -> bool {
        self.winograd_fits_with(self.channels)
    }

    /// [`winograd_fits`](Self::winograd_fits) with `depth` channels summed per product.
    fn winograd_fits_with(&self, depth: usize) -> bool {
        self.algorithm().is_some() && self.cols() >= MIN_POSITIONS && depth >= MIN_DEPTH
    }

    /// 2×2 output blocks per image: `[⌈H'/2⌉, ⌈W'/2⌉]`.
    fn blocks(&self) -> [usize; 2] {
        [self.out_height.div_ceil(2), self.out_width.div_ceil(2)]
    }

    /// `relu(conv2d(x, weight) + bias)` into `out` (`[N, O, H', W']`), for a convolution
    /// that [`winograd_fits`](Self::winograd_fits).
    pub(super) fn winograd_forward(
        &self,
        x: &[f32],
        weight: &[f32],
        bias: &[f32],
        out: &mut [f32],
    ) {
        self.winograd(x, weight, Some(bias), out);
    }

    /// Whether [`winograd_input_grad`](Self::winograd_input_grad) computes this
    /// convolution's input gradient: its adjoint is an `r×r` convolution at stride 1 with
    /// padding `r − 1 − p` over the output's channels.
    pub(super) fn winograd_input_grad_fits(&self) -> bool {
        let [kh, kw] = self.kernel;
        self.winograd_fits_with(self.kernels) && self.padding[0] < kh && self.padding[1] < kw
    }

    /// The input gradient `[N, C, H, W]` into `out` from the output gradient `grad` (`[N, O,
    /// H', W']`, the ReLU's mask applied): the correlation of `grad` with the kernels
    /// flipped and their channel axes swapped, padding `r − 1 − p` (which gives back `H`,
    /// `W`).
    pub(super) fn winograd_input_grad(&self, grad: &[f32], weight: &[f32], out: &mut [f32]) {
        let ([ph, pw], [kh, kw]) = (self.padding, self.kernel);
        let adjoint = Conv {
            channels: self.kernels,
            kernels: self.channels,
            height: self.out_height,
            width: self.out_width,
            padding: [kh - 1 - ph, kw - 1 - pw],
            out_height: self.height,
            out_width: self.width,
            ..*self
        };
        // flipped[g·C/g + c][k][u][v] = weight[g·O/g + k][c][kh − 1 − u][kw − 1 − v]
        let mut flipped = vec![0.0f32; weight.len()];
        let (kernels, channels, area) = (self.kernels, self.channels, kh * kw);
        flipped
            .par_chunks_exact_mut(kernels * area)
            .enumerate()
            .for_each(|(gc, planes)| {
                let (g, c) = (gc / channels, gc % channels);
                for (k, plane) in planes.chunks_exact_mut(area).enumerate() {
                    let kernel = &weight[((g * kernels + k) * channels + c) * area..][..area];
                    plane
                        .iter_mut()
                        .zip(kernel.iter().rev())
                        .for_each(|(f, &w)| *f = w);
                }
            });
        adjoint.winograd(grad, &flipped, None, out);
    }

    /// `conv2d(x, weight)` into `out` (`[N, O, H', W']`), plus the bias and through the ReLU
    /// when `bias` is given: per tile of images and group, the patches' transforms `V`, `α²`
    /// products `M[ξ] = U[ξ] · V[ξ]`, then the outputs' inverse transforms. A single tile
    /// (batch 1) runs its transforms and products in parallel instead.
    fn winograd(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
        let algorithm = self.algorithm().expect("a 3×3 or 5×5 kernel at stride 1");
        let (kernels, channels, entries) = (self.kernels, self.channels, algorithm.entries());
        let u = transform_kernels(algorithm, weight, channels);
        let [bh, bw] = self.blocks();
        let tile = BLOCK_COLUMNS
            .div_ceil(bh * bw)
            .next_power_of_two()
            .clamp(1, self.batch.max(1));
        let out_len = self.out_image_len();
        self.for_each_tile(out, out_len, tile, |images, outputs, parallelism| {
            let parallel = !matches!(parallelism, Parallelism::None);
            let width = images.len() * bh * bw;
            let mut scratch = Scratch::take();
            let [v, m] = scratch.buffers([channels * entries * width, entries * kernels * width]);
            for g in 0..self.groups {
                for_each_chunk(v, entries * width, parallel, |c, v| {
                    transform_patches(self, algorithm, x, images.clone(), g * channels + c, v);
                });
                let u = &u[g * kernels * entries * channels..][..kernels * entries * channels];
                for_each_chunk(m, kernels * width, parallel, |xi, m| {
                    // [O/g, C/g] · [C/g, n·blocks]: U[ξ] rows `α²·C/g` apart, V[ξ] rows
                    // `α²·width` apart.
                    let lhs = (&u[xi * channels..], entries * channels, 1);
                    let rhs = (&v[xi * width..], entries * width, 1);
                    let none = Parallelism::None;
                    strided_matmul(m, [kernels, width], false, lhs, rhs, channels, none);
                });
                for (n, output) in outputs.chunks_exact_mut(out_len).enumerate() {
                    let planes = &mut output[g * kernels * self.cols()..][..kernels * self.cols()];
                    for_each_chunk(planes, self.cols(), parallel, |k, plane| {
                        let first = n * bh * bw;
                        let bias = bias.map(|b| b[g * kernels + k]);
                        transform_outputs(self, algorithm, m, k, first, width, bias, plane);
                    });
                }
            }
        });
    }
}

/// `f(i, chunk)` for each `len`-long chunk of `buffer`, in parallel if `parallel`.
fn for_each_chunk(
    buffer: &mut [f32],
    len: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if parallel {
        buffer
            .par_chunks_exact_mut(len)
            .enumerate()
            .for_each(|(i, chunk)| f(i, chunk));
    } else {
        buffer
            .chunks_exact_mut(len)
            .enumerate()
            .for_each(|(i, chunk)| f(i, chunk));
    }
}

/// `out += coefficient · src`, element by element; nothing for a zero coefficient (the
/// transforms' many zeros cost no pass).
#[inline(always)]
fn add_scaled(out: &mut [f32], coefficient: f32, src: &[f32]) {
    if coefficient != 0.0 {
        out.iter_mut()
            .zip(src)
            .for_each(|(o, &s)| *o += coefficient * s);
    }
}

/// `V = Bᵀ d B` for every `α×α` input patch `d` (zero outside the image) of input channel
/// `channel` of `images`, into `v` (`[α², n·blocks]`). The zero-padded planes are split into
/// their even and odd rows and columns first, so that both steps run over whole planes at
/// once: the rows' combinations (`Bᵀ d`) for every block row, then the columns' for every
/// block (computed over all of a phase's columns, then the blocks' copied out).
#[multiversion(targets = "simd")]
fn transform_patches(
    conv: &Conv,
    algorithm: &Algorithm,
    x: &[f32],
    images: Range<usize>,
    channel: usize,
    v: &mut [f32],
) {
    let (alpha, count) = (algorithm.alpha(), images.len());
    let [bh, bw] = conv.blocks();
    let (plane, w) = (conv.plane(), conv.width);
    let [ph, pw] = conv.padding;
    // The padded plane, (2·bh + α − 2) × (2·bw + α − 2) ≥ (H + 2·ph) × (W + 2·pw), as
    // `p[row phase][column phase][n][row][column]`.
    let (rows, cols) = (bh + alpha / 2 - 1, bw + alpha / 2 - 1);
    let phase = rows * cols;
    let mut p = vec![0.0f32; 4 * count * phase];
    for (n, image) in images.enumerate() {
        let input = &x[image * conv.image_len() + channel * plane..][..plane];
        for (iy, line) in input.chunks_exact(w).enumerate() {
            let y = iy + ph;
            for (ix, &value) in line.iter().enumerate() {
                let x = ix + pw;
                p[(((y % 2) * 2 + x % 2) * count + n) * phase + (y / 2) * cols + x / 2] = value;
            }
        }
    }
    // Rows: c[i][column phase][n][by][column] = Σₖ Bᵀ[i][k] · p[k % 2][column phase][n][by +
    // k/2][column].
    let run = bh * cols;
    let mut c = vec![0.0f32; alpha * 2 * count * run];
    for (i, coefficients) in algorithm.input.chunks_exact(alpha).enumerate() {
        for (pc_n, out) in c[i * 2 * count * run..][..2 * count * run]
            .chunks_exact_mut(run)
            .enumerate()
        {
            for (k, &coefficient) in coefficients.iter().enumerate() {
                let src = &p[((k % 2) * 2 * count + pc_n) * phase + (k / 2) * cols..][..run];
                add_scaled(out, coefficient, src);
            }
        }
    }
    // Columns: v[i·α + j][n][by][bx] = Σₗ Bᵀ[j][l] · c[i][l % 2][n][by][bx + l/2], over
    // every column of a phase (`cols` per block row: the blocks' `bw`, then a few to drop).
    let all = count * run;
    let mut wide = vec![0.0f32; all];
    let width = v.len() / algorithm.entries();
    for i in 0..alpha {
        for (j, coefficients) in algorithm.input.chunks_exact(alpha).enumerate() {
            wide.fill(0.0);
            for (l, &coefficient) in coefficients.iter().enumerate() {
                let (src, shift) = (&c[(i * 2 + l % 2) * all..][..all], l / 2);
                add_scaled(&mut wide[..all - shift], coefficient, &src[shift..]);
            }
            let out = &mut v[(i * alpha + j) * width..][..width];
            for (out, wide) in out.chunks_exact_mut(bw).zip(wide.chunks_exact(cols)) {
                out.copy_from_slice(&wide[..bw]);
            }
        }
    }
}

/// Kernel `k`'s output plane `[H', W']` of one image (its blocks from column `first` of the
/// products `m`, `[α², O/g, width]`): each block `Aᵀ M A` (all the image's blocks at once,
/// so that the loops vectorise); plus `bias` and through the ReLU if given.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets = "simd")]
fn transform_outputs(
    conv: &Conv,
    algorithm: &Algorithm,
    m: &[f32],
    k: usize,
    first: usize,
    width: usize,
    bias: Option<f32>,
    plane: &mut [f32],
) {
    let alpha = algorithm.alpha();
    let [bh, bw] = conv.blocks();
    let blocks = bh * bw;
    let (oh, ow) = (conv.out_height, conv.out_width);
    let entry = |xi: usize| &m[(xi * conv.kernels + k) * width + first..][..blocks];
    // t[r·α + j] = Σᵢ Aᵀ[r][i] · M[i·α + j], then y[2·r + c] = Σⱼ Aᵀ[c][j] · t[r·α + j]:
    // output (r, c) of every block.
    let mut t = vec![0.0f32; 2 * alpha * blocks];
    for (rj, t) in t.chunks_exact_mut(blocks).enumerate() {
        let (r, j) = (rj / alpha, rj % alpha);
        for (i, &c) in algorithm.output[r * alpha..][..alpha].iter().enumerate() {
            add_scaled(t, c, entry(i * alpha + j));
        }
    }
    let mut y = vec![0.0f32; 4 * blocks];
    for (rc, y) in y.chunks_exact_mut(blocks).enumerate() {
        let (r, c) = (rc / 2, rc % 2);
        let t = t[r * alpha * blocks..].chunks_exact(blocks);
        for (&coefficient, t) in algorithm.output[c * alpha..][..alpha].iter().zip(t) {
            add_scaled(y, coefficient, t);
        }
    }
    let mut row = vec![0.0f32; 2 * bw];
    for by in 0..bh {
        for r in 0..2 {
            let oy = 2 * by + r;
            if oy >= oh {
                continue;
            }
            let left = &y[2 * r * blocks + by * bw..][..bw];
            let right = &y[(2 * r + 1) * blocks + by * bw..][..bw];
            for ((pair, &l), &r) in row.chunks_exact_mut(2).zip(left).zip(right) {
                pair.copy_from_slice(&[l, r]);
            }
            let out = &mut plane[oy * ow..][..ow];
            match bias {
                Some(bias) => add_bias_relu(out, &row[..ow], bias),
                None => out.copy_from_slice(&row[..ow]),
            }
        }
    }
}

/// `U = G g Gᵀ` for every kernel plane `g` of `weight` (`[O, C/g, r, r]`), as `[O, α², C/g]`:
/// each kernel's `α²` rows, one per entry `ξ`, each over its input channels. Kernels in
/// parallel.
fn transform_kernels(algorithm: &Algorithm, weight: &[f32], channels: usize) -> Vec<f32> {
    let area = algorithm.r * algorithm.r;
    let mut u = vec![0.0f32; weight.len() / area * algorithm.entries()];
    u.par_chunks_exact_mut(algorithm.entries() * channels)
        .zip(weight.par_chunks_exact(channels * area))
        .for_each(|(u, kernel)| transform_kernel(algorithm, kernel, u));
    u
}

/// [`transform_kernels`] for one kernel (`[C/g, r, r]` into `[α², C/g]`), all its channels at
/// once (each kernel entry laid out across the channels first), so that every step is one
/// vectorised pass.
#[multiversion(targets = "simd")]
fn transform_kernel(algorithm: &Algorithm, kernel: &[f32], u: &mut [f32]) {
    let (alpha, r, g) = (algorithm.alpha(), algorithm.r, algorithm.kernel);
    let channels = u.len() / algorithm.entries();
    // w[a·r + b][c]: entry (a, b) of every channel's plane.
    let mut w = vec![0.0f32; r * r * channels];
    for (c, plane) in kernel.chunks_exact(r * r).enumerate() {
        for (ab, &value) in plane.iter().enumerate() {
            w[ab * channels + c] = value;
        }
    }
    // t[i·r + b] = Σₐ G[i][a] · w[a·r + b]: G g.
    let mut t = vec![0.0f32; alpha * r * channels];
    for (ib, out) in t.chunks_exact_mut(channels).enumerate() {
        let (i, b) = (ib / r, ib % r);
        for a in 0..r {
            add_scaled(out, g[i * r + a], &w[(a * r + b) * channels..][..channels]);
        }
    }
    // u[i·α + j] = Σ_b G[j][b] · t[i·r + b]: (G g) Gᵀ.
    for (ij, out) in u.chunks_exact_mut(channels).enumerate() {
        let (i, j) = (ij / alpha, ij % alpha);
        out.fill(0.0);
        for b in 0..r {
            add_scaled(out, g[j * r + b], &t[(i * r + b) * channels..][..channels]);
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::flex::FlexTensor;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::TensorData;

    use super::*;

    /// Values spread over [-1, 1) in a scrambled order.
    fn random(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// The largest `|a − b|` relative to the largest `|b|` (at least 1).
    fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
            / scale
    }

    /// Winograd's outputs and input gradients equal im2col + gemm's and col2im's, for 3×3
    /// and 5×5 kernels, on odd and even maps, padding from 0 to r − 1, groups, and batches
    /// of one (parallel products), a few and more than a tile.
    #[test]
    fn winograd_equals_im2col() {
        let cases = [
            // batch, groups, channels per group, kernels per group, size, kernel, padding
            (1, 1, 3, 5, [13, 13], 3, 1),
            (3, 2, 4, 3, [8, 7], 3, 0),
            (17, 1, 5, 4, [7, 7], 3, 1),
            (5, 2, 3, 6, [6, 9], 3, 2),
            (2, 1, 2, 2, [3, 3], 3, 0),
            (1, 1, 4, 3, [15, 15], 5, 2),
            (6, 2, 3, 4, [12, 11], 5, 2),
            (3, 1, 2, 5, [9, 10], 5, 0),
            (2, 1, 3, 2, [5, 6], 5, 4),
        ];
        for (seed, (batch, groups, channels, kernels, [h, w], r, padding)) in
            cases.into_iter().enumerate()
        {
            let x_shape = [batch, groups * channels, h, w];
            let w_shape = [groups * kernels, channels, r, r];
            let x = random(x_shape.iter().product(), seed);
            let weight = random(w_shape.iter().product(), seed + 10);
            let bias = random(groups * kernels, seed + 20);
            let options = ConvOptions::new([1, 1], [padding, padding], [1, 1], groups);
            let conv = Conv::new(
                &FlexTensor::from_data(TensorData::new(x.clone(), x_shape)),
                &FlexTensor::from_data(TensorData::new(weight.clone(), w_shape)),
                &options,
            )
            .expect("a convolution Flex's ops handle");
            let len = batch * conv.out_image_len();
            let (mut winograd, mut im2col) = (vec![f32::NAN; len], vec![f32::NAN; len]);
            conv.winograd_forward(&x, &weight, &bias, &mut winograd);
            conv.im2col_forward(&x, &weight, &bias, &mut im2col);
            let diff = relative_difference(&winograd, &im2col);
            assert!(diff <= 1e-5, "case {seed}: max |Δ| = {diff} relative");
            assert!(im2col.iter().any(|&v| v > 0.0), "case {seed}: all zero");

            // The input gradient of an output gradient, both ways.
            let grad = random(len, seed + 30);
            let (mut winograd, mut col2im) = (vec![f32::NAN; x.len()], vec![0.0; x.len()]);
            conv.winograd_input_grad(&grad, &weight, &mut winograd);
            conv.for_each_tile(&mut col2im, conv.image_len(), 1, |images, slots, p| {
                conv.input_grad(&weight, &grad, images, slots, p);
            });
            let diff = relative_difference(&winograd, &col2im);
            assert!(
                diff <= 1e-5,
                "case {seed}: input gradient max |Δ| = {diff} relative"
            );
        }
    }
}
