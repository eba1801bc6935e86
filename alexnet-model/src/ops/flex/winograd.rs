//! 3×3 and 5×5 convolutions at stride 1 by Winograd's minimal filtering F(m×m, r×r) (Lavin &
//! Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each m×m block of
//! outputs from its `α×α` input patch `d` (`α = m + r − 1`) and the `r×r` kernel `g` as
//! `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, `α²` products instead of `m²r²`. Over channels the
//! element-wise products become `α²` matrix products, one per entry `ξ` of the `α×α`
//! transforms: `M[ξ] = U[ξ] · V[ξ]`, `[O/g, C/g]` kernels times `[C/g, tiles]` patches. The
//! transforms have small coefficients, so the outputs match the direct convolution to a few
//! units in the last place for F(2×2, 3×3) and to a few 1e-6 relative for the others
//! (`winograd_equals_im2col`). The backward pass runs the same steps' adjoints: the output
//! gradient's transforms `A ∂Y Aᵀ` once, then the weight gradient's products with the
//! patches' transforms and the input gradient's with the kernels' (`Conv::winograd_backward`).
//!
//! Three algorithms, by kernel and map size ([`LARGE_MAP`]):
//! * F(2×2, 3×3), 16 products per 2×2 outputs where im2col + gemm takes 36: conv3–conv5 of
//!   the ImageNet variants (13×13 maps, 7×7 blocks cover 14×14), half of the torchvision
//!   variant's multiply-adds;
//! * F(3×3, 5×5), 49 per 3×3 outputs where im2col takes 225: conv2 (27×27 maps, 9×9 blocks;
//!   15×15 in cifar, 5×5 blocks: both covered exactly);
//! * F(4×4, 3×3), 36 per 4×4 outputs where im2col takes 144: cifar's conv3–conv5 (7×7 maps,
//!   2×2 blocks cover 8×8).

use std::ops::Range;

use gemm::Parallelism;
use rayon::prelude::*;

use multiversion::multiversion;

use super::{add_bias_relu, strided_matmul, Conv, Scratch};

/// A Winograd algorithm F(m×m, r×r): its three transforms, row-major. Built by Toom–Cook on
/// `α − 1` finite points and ∞.
pub(super) struct Algorithm {
    /// The side `m` of the output blocks.
    m: usize,
    /// The kernel's side `r`.
    r: usize,
    /// `Bᵀ`, `[α, α]`: an input patch `d` → `Bᵀ d B`.
    input: &'static [f32],
    /// `G`, `[α, r]`: a kernel `g` → `G g Gᵀ`.
    kernel: &'static [f32],
    /// `Aᵀ`, `[m, α]`: a block of products `M` → its m×m outputs `Aᵀ M A`.
    output: &'static [f32],
}

impl Algorithm {
    /// The transforms' side `α = m + r − 1`.
    fn alpha(&self) -> usize {
        self.m + self.r - 1
    }

    /// Entries `ξ` of an `α×α` transform: the number of matrix products.
    fn entries(&self) -> usize {
        self.alpha() * self.alpha()
    }

    /// `Aᵀ`, `[m, α]`.
    fn output(&self) -> Matrix {
        Matrix::new(self.output, self.alpha())
    }

    /// `G`, `[α, r]`.
    fn kernel(&self) -> Matrix {
        Matrix::new(self.kernel, self.r)
    }
}

/// F(2×2, 3×3) on the points 0, 1, −1.
#[rustfmt::skip]
const F2X3: Algorithm = Algorithm {
    m: 2,
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

/// F(3×3, 5×5) on the points 0, 1, −1, 2, −2, −1/2 (`bench/winograd_points.py` derives the
/// matrices and models their rounding in float32 against float64 on the cifar variant's conv2:
/// 4.2e-6 relative to the largest output, against 5.2e-6 for F(2×2, 5×5) on 0, ±1, ±2, which
/// it replaced). 5.4 products per output instead of 9, and its 3×3 blocks tile the 15×15 and
/// 27×27 maps exactly where 2×2 blocks covered 16×16 and 28×28. Measured per operation at
/// batch 32 (AMD EPYC, alternating): cifar's conv2 forward 9–13 → 7.1–7.7 ms, torchvision's
/// 46–56 → 38–40 ms.
#[rustfmt::skip]
const F3X5: Algorithm = Algorithm {
    m: 3,
    r: 5,
    input: &[
        2.0, 4.0, -5.0 / 2.0, -5.0, 1.0 / 2.0, 1.0, 0.0,
        0.0, -2.0, -6.0, -7.0 / 2.0, 3.0 / 2.0, 1.0, 0.0,
        0.0, 2.0, 2.0, -9.0 / 2.0, -1.0 / 2.0, 1.0, 0.0,
        0.0, -1.0, -5.0 / 2.0, 0.0, 5.0 / 2.0, 1.0, 0.0,
        0.0, 1.0, 3.0 / 2.0, -2.0, -3.0 / 2.0, 1.0, 0.0,
        0.0, 4.0, 0.0, -5.0, 0.0, 1.0, 0.0,
        0.0, 2.0, 4.0, -5.0 / 2.0, -5.0, 1.0 / 2.0, 1.0,
    ],
    kernel: &[
        1.0 / 2.0, 0.0, 0.0, 0.0, 0.0,
        -1.0 / 9.0, -1.0 / 9.0, -1.0 / 9.0, -1.0 / 9.0, -1.0 / 9.0,
        1.0 / 3.0, -1.0 / 3.0, 1.0 / 3.0, -1.0 / 3.0, 1.0 / 3.0,
        1.0 / 60.0, 1.0 / 30.0, 1.0 / 15.0, 2.0 / 15.0, 4.0 / 15.0,
        -1.0 / 36.0, 1.0 / 18.0, -1.0 / 9.0, 2.0 / 9.0, -4.0 / 9.0,
        -32.0 / 45.0, 16.0 / 45.0, -8.0 / 45.0, 4.0 / 45.0, -2.0 / 45.0,
        0.0, 0.0, 0.0, 0.0, 1.0,
    ],
    output: &[
        1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, -2.0, -1.0 / 2.0, 0.0,
        0.0, 1.0, 1.0, 4.0, 4.0, 1.0 / 4.0, 1.0,
    ],
};

/// F(4×4, 3×3) on the points 0, 1, −1, 2, −1/2: as accurate as F(3×3, 5×5) (the usual
/// points 0, ±1, ±2 lose about 3× more: `bench/winograd_points.py` on the cifar variant's
/// conv4 shapes gives 3.5e-6 against 1.0e-5 relative to the largest output).
#[rustfmt::skip]
const F4X3: Algorithm = Algorithm {
    m: 4,
    r: 3,
    input: &[
        1.0, 1.5, -2.0, -1.5, 1.0, 0.0,
        0.0, -1.0, -2.5, -0.5, 1.0, 0.0,
        0.0, 1.0, 0.5, -2.5, 1.0, 0.0,
        0.0, -0.5, -1.0, 0.5, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, 1.0, 1.5, -2.0, -1.5, 1.0,
    ],
    kernel: &[
        1.0, 0.0, 0.0,
        -1.0 / 3.0, -1.0 / 3.0, -1.0 / 3.0,
        1.0 / 3.0, -1.0 / 3.0, 1.0 / 3.0,
        1.0 / 15.0, 2.0 / 15.0, 4.0 / 15.0,
        -16.0 / 15.0, 8.0 / 15.0, -4.0 / 15.0,
        0.0, 0.0, 1.0,
    ],
    output: &[
        1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, -0.5, 0.0,
        0.0, 1.0, 1.0, 4.0, 0.25, 0.0,
        0.0, 1.0, -1.0, 8.0, -0.125, 1.0,
    ],
};

/// Output positions per image from which 3×3 kernels take F(2×2, 3×3) (the ImageNet variants'
/// 13×13 maps), F(4×4, 3×3) on smaller ones (cifar's 7×7: 2×2 blocks of 4×4 cover 8×8, where
/// F(2×2, 3×3)'s 4×4 blocks of 2×2 did not beat im2col).
/// Measured on an AMD EPYC, alternating: cifar training step at batch 32 278–317 → 301–344
/// images/s, batch 128 311–318 → 362–367 with F(4×4, 3×3) on its 7×7 maps; F(4×4, 3×3) on
/// 13×13 instead of F(2×2, 3×3) ran torchvision inference at batch 1 at 47–50 against 52–53
/// images/s, and its products round more (4.8e-6 against 7e-7 relative, float32 against
/// float64, 384 channels).
const LARGE_MAP: usize = 100;

/// Channels per group (the products' depth) from which Winograd runs: the cifar variant's
/// conv1 (3 input channels, 5×5 on 32×32) took 3.1 ms by Winograd against 2.1 by im2col
/// (forward at batch 32, per-operation timing); conv2 and later have 48 or more.
const MIN_DEPTH: usize = 16;

/// Output blocks (matrix-product columns) a tile of images reaches at least (rounded up to a
/// power of two of images, so that batches of a power of two split evenly): a product of a
/// single 13×13 image (49 blocks) is too narrow for `gemm` to run at speed.
const BLOCK_COLUMNS: usize = 196;

/// Block columns (output blocks of a chunk of images) whose transforms the weight gradient
/// holds at once: it sums over the batch chunk by chunk, so that its buffers stay small
/// whatever the batch.
const GRADIENT_COLUMNS: usize = 512;

/// Columns of a [`transpose`] tile: 64 lines of the output written across while the tile's
/// input rows are read.
const TRANSPOSE_TILE: usize = 64;

impl Conv {
    /// The algorithm for this convolution's kernel: 3×3 or 5×5 at stride 1; `None` for any
    /// other.
    fn algorithm(&self) -> Option<&'static Algorithm> {
        let large = self.cols() >= LARGE_MAP;
        match (self.kernel, self.stride) {
            ([3, 3], [1, 1]) if large => Some(&F2X3),
            ([3, 3], [1, 1]) => Some(&F4X3),
            ([5, 5], [1, 1]) => Some(&F3X5),
            _ => None,
        }
    }

    /// Whether [`winograd_forward`](Self::winograd_forward) computes this convolution: one
    /// it has an [`Algorithm`] for, with at least [`MIN_DEPTH`] input channels per group.
    pub(super) fn winograd_fits(&self) -> bool {
        self.algorithm().is_some() && self.channels >= MIN_DEPTH
    }

    /// `algorithm`'s m×m output blocks per image: `[⌈H'/m⌉, ⌈W'/m⌉]`.
    fn blocks(&self, algorithm: &Algorithm) -> [usize; 2] {
        let m = algorithm.m;
        [self.out_height.div_ceil(m), self.out_width.div_ceil(m)]
    }

    /// `relu(conv2d(x, weight) + bias)` into `out` (`[N, O, H', W']`), for a convolution
    /// that [`winograd_fits`](Self::winograd_fits): per tile of images and group, the
    /// patches' transforms `V`, `α²` products `M[ξ] = U[ξ] · V[ξ]`, then the outputs' inverse
    /// transforms. A single tile (batch 1) runs its transforms and products in parallel
    /// instead.
    pub(super) fn winograd_forward(
        &self,
        x: &[f32],
        weight: &[f32],
        bias: &[f32],
        out: &mut [f32],
    ) {
        let algorithm = self.algorithm().expect("a convolution with an algorithm");
        let (kernels, channels, entries) = (self.kernels, self.channels, algorithm.entries());
        let u = transform_kernels(algorithm, weight, channels);
        let [bh, bw] = self.blocks(algorithm);
        let tile = BLOCK_COLUMNS
            .div_ceil(bh * bw)
            .next_power_of_two()
            .clamp(1, self.batch.max(1));
        let out_len = self.out_image_len();
        self.for_each_tile(out, out_len, tile, |images, outputs, parallelism| {
            let parallel = !matches!(parallelism, Parallelism::None);
            let width = images.len() * bh * bw;
            let mut scratch = Scratch::take();
            let side = algorithm.m;
            let layout = PhaseSplit::new(self, algorithm, images.len());
            let [v, m, y] = scratch.buffers([
                channels * entries * width,
                entries * kernels * width,
                kernels * side * side * width,
            ]);
            for g in 0..self.groups {
                self.transform_group_patches(&layout, x, images.clone(), g, v, parallel);
                let u = &u[g * kernels * entries * channels..][..kernels * entries * channels];
                for_each_chunk(m, kernels * width, parallel, |xi, m| {
                    // [O/g, C/g] · [C/g, blocks·n]: U[ξ] rows `α²·C/g` apart, V[ξ] rows
                    // `α²·width` apart.
                    let lhs = (&u[xi * channels..], entries * channels, 1);
                    let rhs = (&v[xi * width..], entries * width, 1);
                    let none = Parallelism::None;
                    strided_matmul(m, [kernels, width], false, lhs, rhs, channels, none);
                });
                for_each_chunk(y, side * side * width, parallel, |k, y| {
                    transform_outputs(algorithm, m, k, kernels, y);
                });
                // Every image's plane of every kernel of group g, in one pass.
                let planes_per_image = self.groups * kernels;
                for_each_chunk(outputs, self.cols(), parallel, |i, plane| {
                    let (n, gk) = (i / planes_per_image, i % planes_per_image);
                    if gk / kernels == g {
                        let k = gk % kernels;
                        let y = &y[k * side * side * width..][..side * side * width];
                        write_plane(self, algorithm, y, n, bias[gk], plane);
                    }
                });
            }
        });
    }

    /// `V` of group `g`'s input channels of `images` into `v` (`[C/g, α², blocks, n]`), the
    /// channels in parallel if `parallel`.
    fn transform_group_patches(
        &self,
        layout: &PhaseSplit,
        x: &[f32],
        images: Range<usize>,
        g: usize,
        v: &mut [f32],
        parallel: bool,
    ) {
        let channel_len = layout.algorithm.entries() * layout.bh * layout.bw * images.len();
        for_each_chunk(v, channel_len, parallel, |c, v| {
            transform_patches(self, layout, x, images.clone(), g * self.channels + c, v);
        });
    }

    /// The weight gradient `[O, C/g, r, r]`, and the input gradient `[N, C, H, W]` into
    /// `input_grad` if given, from the input `x` and the output gradient `grad` (the ReLU's
    /// mask applied), for a convolution that [fits](Self::winograd_fits): the adjoints of
    /// [`winograd_forward`](Self::winograd_forward)'s steps. Per chunk of images and group,
    /// the gradients' transforms `Ŷ = A ∂Y Aᵀ` (the adjoint of the outputs' transform) serve
    /// both:
    /// * weights: `Gᵀ [Σ Ŷ ⊙ (Bᵀ d B)] G` over every block of every image, the `α²` products
    ///   `M[ξ] += Ŷ[ξ] · V[ξ]ᵀ` (`[O/g, blocks] · [blocks, C/g]`) in parallel over `ξ`, each
    ///   summed over the images in their order: the same numbers whatever the thread count;
    /// * input: the products `V̄[ξ] = U[ξ]ᵀ · Ŷ[ξ]` (`[C/g, O/g] · [O/g, blocks]`), then each
    ///   block's `B V̄ Bᵀ` added into the padded plane at its patch ([`untransform_patches`]).
    ///
    /// Measured per operation at batch 32 (AMD EPYC, alternating) against im2col's weight
    /// gradient: cifar's conv4 backward pass 13.5 → 9.8 ms, conv5's 9.1 → 7.3, conv2's 20.9 →
    /// 16.6–18.4; torchvision's five backward passes 344 → 258–270 ms. (With F(2×2, 5×5),
    /// cifar's conv2 had been slower this way: 26.3 → 28.5 ms.) The input gradient this way
    /// instead of as the adjoint convolution (the output gradient's patches transformed, with
    /// the kernels flipped): cifar's conv2 backward 15.4–15.7 → 13.5–13.9 ms, torchvision's
    /// five 255–269 → 237–245 ms; the cifar training step 397 → 433 images/s (4 rounds).
    pub(super) fn winograd_backward(
        &self,
        x: &[f32],
        weight: &[f32],
        grad: &[f32],
        mut input_grad: Option<&mut [f32]>,
    ) -> Vec<f32> {
        let algorithm = self.algorithm().expect("a convolution with an algorithm");
        let (kernels, channels, entries) = (self.kernels, self.channels, algorithm.entries());
        let [bh, bw] = self.blocks(algorithm);
        let chunk = GRADIENT_COLUMNS
            .div_ceil(bh * bw)
            .clamp(1, self.batch.max(1));
        let u = input_grad
            .is_some()
            .then(|| transform_kernels(algorithm, weight, channels));
        let mut m = vec![0.0f32; self.groups * entries * kernels * channels];
        // The input gradient's planes of a chunk of images, `[C, n, H, W]`, if asked for.
        let plane = self.plane();
        let in_planes = if input_grad.is_some() {
            self.groups * channels
        } else {
            0
        };
        let mut scratch = Scratch::take();
        for start in (0..self.batch).step_by(chunk) {
            let images = start..(start + chunk).min(self.batch);
            let (count, width) = (images.len(), images.len() * bh * bw);
            let layout = PhaseSplit::new(self, algorithm, count);
            let [v, y, v_grad, planes] = scratch.buffers([
                channels * entries * width,
                kernels * entries * width,
                entries * channels * width,
                in_planes * count * plane,
            ]);
            for (g, m) in m.chunks_exact_mut(entries * kernels * channels).enumerate() {
                self.transform_group_patches(&layout, x, images.clone(), g, v, true);
                for_each_chunk(y, entries * width, true, |k, y| {
                    transform_gradients(self, algorithm, grad, images.clone(), g * kernels + k, y);
                });
                let none = Parallelism::None;
                // V[ξ]ᵀ laid out `[width, C/g]` first (in `v_grad`, free until the input's
                // products), so that `gemm` packs it with vector copies.
                m.par_chunks_exact_mut(kernels * channels)
                    .zip(v_grad.par_chunks_exact_mut(width * channels))
                    .enumerate()
                    .for_each(|(xi, (m, v_t))| {
                        transpose(&v[xi * width..], entries * width, channels, v_t);
                        // [O/g, width] · [width, C/g]: Ŷ[ξ] rows `α²·width` apart.
                        let lhs = (&y[xi * width..], entries * width, 1);
                        let accumulate = start > 0;
                        let rhs = (&*v_t, channels, 1);
                        strided_matmul(m, [kernels, channels], accumulate, lhs, rhs, width, none);
                    });
                let Some(u) = &u else { continue };
                let u = &u[g * kernels * entries * channels..][..kernels * entries * channels];
                for_each_chunk(v_grad, channels * width, true, |xi, v_grad| {
                    // [C/g, O/g] · [O/g, width]: U[ξ]ᵀ columns `α²·C/g` apart, Ŷ[ξ] rows
                    // `α²·width` apart.
                    let lhs = (&u[xi * channels..], 1, entries * channels);
                    let rhs = (&y[xi * width..], entries * width, 1);
                    strided_matmul(v_grad, [channels, width], false, lhs, rhs, kernels, none);
                });
                let group_planes =
                    &mut planes[g * channels * count * plane..][..channels * count * plane];
                for_each_chunk(group_planes, count * plane, true, |c, out| {
                    untransform_patches(self, &layout, v_grad, c, channels, out);
                });
            }
            // Every image's plane of every channel, from the channels' planes of the chunk.
            if let Some(input_grad) = input_grad.as_deref_mut() {
                let image_len = self.image_len();
                let slots = &mut input_grad[start * image_len..][..count * image_len];
                for_each_chunk(slots, plane, true, |i, out| {
                    let (n, c) = (i / in_planes, i % in_planes);
                    out.copy_from_slice(&planes[(c * count + n) * plane..][..plane]);
                });
            }
        }
        let area = algorithm.r * algorithm.r;
        let mut weight_grad = vec![0.0f32; self.groups * kernels * channels * area];
        weight_grad
            .par_chunks_exact_mut(channels * area)
            .enumerate()
            .for_each(|(gk, out)| {
                let (g, k) = (gk / kernels, gk % kernels);
                let m = &m[g * entries * kernels * channels..][..entries * kernels * channels];
                untransform_kernel(algorithm, m, k, kernels, out);
            });
        weight_grad
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

/// `out` (`[width, rows]`) = the `[rows, width]` matrix in `src` whose rows are `stride`
/// apart, transposed: eight rows at a time (each column's eight values stored together), in
/// tiles of [`TRANSPOSE_TILE`] columns. `gemm` would otherwise pack such a matrix itself, one
/// float at a time across rows `α²·width` apart: 16.6 % of a cifar training step in its
/// packing code, 11.5 % with this (which takes 2.7 %); the step 464 → 475 images/s at
/// batch 32 (medians of 10 alternating rounds, AMD EPYC).
#[multiversion(targets = "simd")]
fn transpose(src: &[f32], stride: usize, rows: usize, out: &mut [f32]) {
    let width = out.len() / rows;
    for start in (0..width).step_by(TRANSPOSE_TILE) {
        let end = (start + TRANSPOSE_TILE).min(width);
        let mut r = 0;
        while r + 8 <= rows {
            let lines: [&[f32]; 8] =
                std::array::from_fn(|i| &src[(r + i) * stride + start..][..end - start]);
            for (j, column) in (start..end).enumerate() {
                let values: [f32; 8] = std::array::from_fn(|i| lines[i][j]);
                out[column * rows + r..][..8].copy_from_slice(&values);
            }
            r += 8;
        }
        for r in r..rows {
            let row = &src[r * stride + start..][..end - start];
            for (column, &value) in (start..end).zip(row) {
                out[column * rows + r] = value;
            }
        }
    }
}

/// `L X Rᵀ` for a grid `X` (`[a, b]`) of `width`-long vectors, `x(i·b + j)` its entry (i, j),
/// `L` `[p, a]` and `R` `[q, b]`, into `out` (`[p, q]` such vectors): the rows' combinations
/// `L X` first, then the columns'. Every transform of an algorithm is one of these, with its
/// matrices.
#[inline(always)]
fn separable<'a>(
    left: Matrix,
    right: Matrix,
    x: impl Fn(usize) -> &'a [f32],
    out: &mut [f32],
    width: usize,
) {
    let ([p, a], [q, b]) = (left.shape(), right.shape());
    // t[i·b + j] = Σₖ L[i][k] · X[k·b + j].
    let mut t = vec![0.0f32; p * b * width];
    for (ij, t) in t.chunks_exact_mut(width).enumerate() {
        let (i, j) = (ij / b, ij % b);
        for k in 0..a {
            add_scaled(t, left.at(i, k), x(k * b + j));
        }
    }
    // out[i·q + j] = Σₖ R[j][k] · t[i·b + k].
    for (ij, out) in out[..p * q * width].chunks_exact_mut(width).enumerate() {
        let (i, j) = (ij / q, ij % q);
        out.fill(0.0);
        for k in 0..b {
            add_scaled(out, right.at(j, k), &t[(i * b + k) * width..][..width]);
        }
    }
}

/// One of an [`Algorithm`]'s matrices as a transform reads it: row-major `values` with `cols`
/// columns, or their transpose.
#[derive(Clone, Copy)]
struct Matrix {
    values: &'static [f32],
    cols: usize,
    transposed: bool,
}

impl Matrix {
    /// The matrix itself.
    fn new(values: &'static [f32], cols: usize) -> Self {
        Self {
            values,
            cols,
            transposed: false,
        }
    }

    /// Its transpose.
    fn transposed(self) -> Self {
        Self {
            transposed: !self.transposed,
            ..self
        }
    }

    /// `[rows, columns]` as read.
    fn shape(&self) -> [usize; 2] {
        let rows = self.values.len() / self.cols;
        if self.transposed {
            [self.cols, rows]
        } else {
            [rows, self.cols]
        }
    }

    /// Entry (i, j) as read.
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        if self.transposed {
            self.values[j * self.cols + i]
        } else {
            self.values[i * self.cols + j]
        }
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

/// Where each of `positions` goes once a row or a column is split into its phases modulo
/// `m`: `(i % m) · phase + (i / m) · step`.
fn phase_places(positions: Range<usize>, m: usize, phase: usize, step: usize) -> Vec<usize> {
    positions
        .map(|i| (i % m) * phase + (i / m) * step)
        .collect()
}

/// Lays out `planes` (one per image, row-major, `column_places.len()` wide) in `out`: element
/// (y, x) of image n at `row_places[y] + column_places[x] + n` (the transforms' phase-split
/// layouts, the images innermost).
fn scatter<'a>(
    out: &mut [f32],
    planes: impl Iterator<Item = &'a [f32]>,
    row_places: &[usize],
    column_places: &[usize],
) {
    for (n, plane) in planes.enumerate() {
        let lines = plane.chunks_exact(column_places.len());
        for (&row_place, line) in row_places.iter().zip(lines) {
            let out = &mut out[row_place + n..];
            for (&place, &value) in column_places.iter().zip(line) {
                out[place] = value;
            }
        }
    }
}

/// The adjoint of [`scatter`]: each of `planes` (one per image, row-major,
/// `column_places.len()` wide) read back from `src`, element (y, x) of image n from
/// `row_places[y] + column_places[x] + n`.
fn gather<'a>(
    planes: impl Iterator<Item = &'a mut [f32]>,
    src: &[f32],
    row_places: &[usize],
    column_places: &[usize],
) {
    for (n, plane) in planes.enumerate() {
        let lines = plane.chunks_exact_mut(column_places.len());
        for (&row_place, line) in row_places.iter().zip(lines) {
            let src = &src[row_place + n..];
            for (&place, value) in column_places.iter().zip(line) {
                *value = src[place];
            }
        }
    }
}

/// The layout in which [`transform_patches`] and [`untransform_patches`] hold a channel's
/// zero-padded input planes of `n` images (the same for every channel of a tile, so built
/// once per tile): the padded plane, (m·bh + α − m) × (m·bw + α − m)
/// ≥ (H + 2·ph) × (W + 2·pw), split into its rows' and columns' phases modulo m,
/// `[row phase][column phase][row][column][n]`, then `reach` more rows of zeros (the rows'
/// step reads that far past the last phase).
struct PhaseSplit {
    /// The algorithm whose patches these are.
    algorithm: &'static Algorithm,
    /// Block rows per image.
    bh: usize,
    /// Block columns per image.
    bw: usize,
    /// One row of a phase: `(bw + reach)·n`.
    line: usize,
    /// One phase: `(bh + reach)` lines.
    phase: usize,
    /// The `bh` lines a step computes per phase.
    rows_len: usize,
    /// Floats in all: `m²` phases and `reach` lines.
    len: usize,
    /// Where input row y goes: image n's element (y, x) is at
    /// `row_places[y] + column_places[x] + n`.
    row_places: Vec<usize>,
    /// Where input column x goes.
    column_places: Vec<usize>,
}

impl PhaseSplit {
    fn new(conv: &Conv, algorithm: &'static Algorithm, count: usize) -> Self {
        let m = algorithm.m;
        let [bh, bw] = conv.blocks(algorithm);
        let [ph, pw] = conv.padding;
        let reach = (algorithm.alpha() - 1) / m;
        let line = (bw + reach) * count;
        let phase = (bh + reach) * line;
        Self {
            algorithm,
            bh,
            bw,
            line,
            phase,
            rows_len: bh * line,
            len: m * m * phase + reach * line,
            row_places: phase_places(ph..ph + conv.height, m, m * phase, line),
            column_places: phase_places(pw..pw + conv.width, m, phase, count),
        }
    }
}

/// `V = Bᵀ d B` for every `α×α` input patch `d` (zero outside the image) of input channel
/// `channel` of `images`, into `v` (`[α², blocks, n]`: the images side by side innermost, so
/// that every step below runs over all of them at once). The zero-padded planes are split
/// into their rows' and columns' phases modulo m first, so that both steps are long
/// vectorised passes: the rows' combinations (`Bᵀ d`) over whole planes, then the columns'
/// over each block row.
#[multiversion(targets = "simd")]
fn transform_patches(
    conv: &Conv,
    layout: &PhaseSplit,
    x: &[f32],
    images: Range<usize>,
    channel: usize,
    v: &mut [f32],
) {
    let (algorithm, count) = (layout.algorithm, images.len());
    let (alpha, m) = (algorithm.alpha(), algorithm.m);
    let mut p = vec![0.0f32; layout.len];
    let plane = conv.plane();
    let planes = images.map(|image| &x[image * conv.image_len() + channel * plane..][..plane]);
    scatter(&mut p, planes, &layout.row_places, &layout.column_places);
    // Rows: c[i][column phase][by][column][n] = Σₖ Bᵀ[i][k] · p[k % m][column phase][by +
    // k/m][column][n] for the `bh` block rows, over each column phase's plane at once (its
    // rows from `bh` on are left over, never read).
    let mut c = vec![0.0f32; alpha * m * layout.phase];
    for (out, coefficients) in c
        .chunks_exact_mut(m * layout.phase)
        .zip(algorithm.input.chunks_exact(alpha))
    {
        for (q, out) in out.chunks_exact_mut(layout.phase).enumerate() {
            for (k, &coefficient) in coefficients.iter().enumerate() {
                let src =
                    &p[(k % m) * m * layout.phase + q * layout.phase + (k / m) * layout.line..];
                add_scaled(&mut out[..layout.rows_len], coefficient, src);
            }
        }
    }
    // Columns: v[i·α + j][by][bx][n] = Σₗ Bᵀ[j][l] · c[i][l % m][by][bx + l/m][n], over the
    // `bh` rows at once (every column of each), then each block row's `bw` blocks copied out.
    let mut wide = vec![0.0f32; layout.rows_len];
    for (ij, out) in v
        .chunks_exact_mut(layout.bh * layout.bw * count)
        .enumerate()
    {
        let i = ij / alpha;
        let coefficients = &algorithm.input[(ij % alpha) * alpha..][..alpha];
        wide.fill(0.0);
        for (l, &coefficient) in coefficients.iter().enumerate() {
            let src = &c[(i * m + l % m) * layout.phase + (l / m) * count..];
            add_scaled(&mut wide, coefficient, src);
        }
        for (out, wide) in out
            .chunks_exact_mut(layout.bw * count)
            .zip(wide.chunks_exact(layout.line))
        {
            out.copy_from_slice(&wide[..layout.bw * count]);
        }
    }
}

/// The adjoint of [`transform_patches`]: input channel `c`'s gradient planes `[n, H, W]` of a
/// chunk of images into `out`, from the gradients of its patches' transforms `V̄` in
/// `v_grad` (`[α², C/g, blocks, n]`): each block's `B V̄ Bᵀ` added into the padded plane at
/// its patch, the padding dropped. [`transform_patches`]'s passes in reverse order, each
/// transposed, in the same phase-split layout.
#[multiversion(targets = "simd")]
fn untransform_patches(
    conv: &Conv,
    layout: &PhaseSplit,
    v_grad: &[f32],
    c: usize,
    channels: usize,
    out: &mut [f32],
) {
    let (algorithm, count) = (layout.algorithm, out.len() / conv.plane());
    let (alpha, m) = (algorithm.alpha(), algorithm.m);
    let width = layout.bh * layout.bw * count;
    // Columns: c̄[i][l % m][by][bx + l/m][n] += Bᵀ[j][l] · V̄[i·α + j][by][bx][n], each
    // entry's blocks laid out as `transform_patches`' rows (the columns from `bw` on zero).
    let mut c_grad = vec![0.0f32; alpha * m * layout.phase];
    let mut wide = vec![0.0f32; layout.rows_len];
    for ij in 0..alpha * alpha {
        let i = ij / alpha;
        let entry = &v_grad[(ij * channels + c) * width..][..width];
        for (wide, blocks) in wide
            .chunks_exact_mut(layout.line)
            .zip(entry.chunks_exact(layout.bw * count))
        {
            wide[..layout.bw * count].copy_from_slice(blocks);
        }
        let coefficients = &algorithm.input[(ij % alpha) * alpha..][..alpha];
        for (l, &coefficient) in coefficients.iter().enumerate() {
            let shift = (l / m) * count;
            add_scaled(
                &mut c_grad[(i * m + l % m) * layout.phase + shift..][..layout.rows_len],
                coefficient,
                &wide,
            );
        }
    }
    // Rows: p̄[k % m][column phase][by + k/m][column][n] += Bᵀ[i][k] · c̄[i][column
    // phase][by][column][n].
    let mut p_grad = vec![0.0f32; layout.len];
    for (i, coefficients) in algorithm.input.chunks_exact(alpha).enumerate() {
        for q in 0..m {
            let src = &c_grad[(i * m + q) * layout.phase..][..layout.rows_len];
            for (k, &coefficient) in coefficients.iter().enumerate() {
                let at = (k % m) * m * layout.phase + q * layout.phase + (k / m) * layout.line;
                add_scaled(&mut p_grad[at..][..layout.rows_len], coefficient, src);
            }
        }
    }
    let (rows, columns) = (&layout.row_places, &layout.column_places);
    gather(out.chunks_exact_mut(conv.plane()), &p_grad, rows, columns);
}

/// `Y = Aᵀ M A` of kernel `k`'s blocks in the products `m` (`[α², O/g, width]`), every
/// block of the tile at once (so that the loops vectorise over all its images): `y[m·r + c]`
/// holds output `(r, c)` of every block (`[m², width]`).
#[multiversion(targets = "simd")]
fn transform_outputs(algorithm: &Algorithm, m: &[f32], k: usize, kernels: usize, y: &mut [f32]) {
    let width = y.len() / (algorithm.m * algorithm.m);
    let entry = |xi: usize| &m[(xi * kernels + k) * width..][..width];
    let a_t = algorithm.output();
    separable(a_t, a_t, entry, y, width);
}

/// Image `n`'s output plane `[H', W']` of one kernel from its blocks' outputs (`y` as
/// [`transform_outputs`] leaves it, `[m², blocks, images]`), plus `bias` and through the
/// ReLU.
fn write_plane(
    conv: &Conv,
    algorithm: &Algorithm,
    y: &[f32],
    n: usize,
    bias: f32,
    plane: &mut [f32],
) {
    let side = algorithm.m;
    let [bh, bw] = conv.blocks(algorithm);
    let width = y.len() / (side * side);
    let count = width / (bh * bw);
    let ow = conv.out_width;
    let mut row = vec![0.0f32; side * bw];
    for (by, rows) in plane.chunks_mut(side * ow).enumerate() {
        for (r, out) in rows.chunks_exact_mut(ow).enumerate() {
            // Column c of every block from y[m·r + c].
            for c in 0..side {
                let column = y[(side * r + c) * width + by * bw * count + n..].iter();
                for (block, &value) in row.chunks_exact_mut(side).zip(column.step_by(count)) {
                    block[c] = value;
                }
            }
            add_bias_relu(out, &row[..ow], bias);
        }
    }
}

/// `Ŷ = A ∂Y Aᵀ` for every m×m block `∂Y` (zero outside the map) of output channel
/// `kernel`'s gradient plane of `images`, into `y` (`[α², blocks, n]`, the layout of
/// [`transform_patches`]): the blocks' entries gathered into `m²` planes first, so that both
/// steps run over every block of every image at once.
#[multiversion(targets = "simd")]
fn transform_gradients(
    conv: &Conv,
    algorithm: &Algorithm,
    grad: &[f32],
    images: Range<usize>,
    kernel: usize,
    y: &mut [f32],
) {
    let (m, count) = (algorithm.m, images.len());
    let [bh, bw] = conv.blocks(algorithm);
    let (plane, ow) = (conv.cols(), conv.out_width);
    let width = bh * bw * count;
    // d[r·m + c][by][bx][n]: entry (r, c) of every block.
    let mut d = vec![0.0f32; m * m * width];
    let out_len = conv.out_image_len();
    let planes = images.map(|image| &grad[image * out_len + kernel * plane..][..plane]);
    let row_places = phase_places(0..conv.out_height, m, m * width, bw * count);
    scatter(
        &mut d,
        planes,
        &row_places,
        &phase_places(0..ow, m, width, count),
    );
    // A d Aᵀ.
    let a = algorithm.output().transposed();
    separable(a, a, |rc| &d[rc * width..][..width], y, width);
}

/// Kernel `k`'s gradient `[C/g, r, r]` from the products' sums `m` (`[α², O/g, C/g]`): `Gᵀ
/// M G` for each channel, all channels at once (the adjoint of [`transform_kernel`]).
#[multiversion(targets = "simd")]
fn untransform_kernel(algorithm: &Algorithm, m: &[f32], k: usize, kernels: usize, out: &mut [f32]) {
    let r = algorithm.r;
    let channels = out.len() / (r * r);
    let entry = |xi: usize| &m[(xi * kernels + k) * channels..][..channels];
    // w[a·r + b] = Σᵢ Σⱼ G[i][a] · M[i·α + j] · G[j][b]: Gᵀ M G.
    let mut w = vec![0.0f32; r * r * channels];
    let g_t = algorithm.kernel().transposed();
    separable(g_t, g_t, entry, &mut w, channels);
    // out[c][a][b] = w[a·r + b][c].
    for (c, plane) in out.chunks_exact_mut(r * r).enumerate() {
        for (ab, value) in plane.iter_mut().enumerate() {
            *value = w[ab * channels + c];
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
    let r = algorithm.r;
    let channels = u.len() / algorithm.entries();
    // w[a·r + b][c]: entry (a, b) of every channel's plane.
    let mut w = vec![0.0f32; r * r * channels];
    for (c, plane) in kernel.chunks_exact(r * r).enumerate() {
        for (ab, &value) in plane.iter().enumerate() {
            w[ab * channels + c] = value;
        }
    }
    // u[i·α + j] = Σₐ Σ_b G[i][a] · w[a·r + b] · G[j][b]: G g Gᵀ.
    let g = algorithm.kernel();
    separable(g, g, |ab| &w[ab * channels..][..channels], u, channels);
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

    /// Winograd's outputs, input gradients and weight gradients equal im2col + gemm's and
    /// col2im's, for each algorithm (F(2×2, 3×3) on maps of at least [`LARGE_MAP`] outputs,
    /// F(4×4, 3×3) on smaller ones, F(3×3, 5×5)), on odd and even maps, padding from 0 to r − 1, groups,
    /// and batches of one (parallel products), a few and more than a tile.
    #[test]
    fn winograd_equals_im2col() {
        let cases = [
            // batch, groups, channels per group, kernels per group, size, kernel, padding,
            // the algorithm's output block side m
            (1, 1, 3, 5, [13, 13], 3, 1, 2),
            (3, 2, 4, 3, [14, 12], 3, 0, 2),
            (3, 2, 4, 3, [8, 7], 3, 0, 4),
            (17, 1, 5, 4, [7, 7], 3, 1, 4),
            (1, 1, 6, 5, [7, 7], 3, 1, 4),
            (5, 2, 3, 6, [6, 9], 3, 2, 4),
            (2, 1, 2, 2, [3, 3], 3, 0, 4),
            (1, 1, 4, 3, [15, 15], 5, 2, 3),
            (6, 2, 3, 4, [12, 11], 5, 2, 3),
            (3, 1, 2, 5, [14, 15], 5, 0, 3),
            (2, 1, 3, 2, [9, 12], 5, 4, 3),
            (4, 1, 3, 4, [7, 7], 5, 2, 3),
            // More channels than one of `transpose`'s 8-row blocks.
            (3, 1, 19, 9, [7, 7], 3, 1, 4),
            (2, 2, 17, 5, [15, 15], 5, 2, 3),
            // Batches over several of the weight gradient's chunks (GRADIENT_COLUMNS).
            (12, 1, 2, 3, [16, 16], 3, 1, 2),
            (20, 1, 2, 3, [15, 15], 5, 2, 3),
        ];
        for (seed, (batch, groups, channels, kernels, [h, w], r, padding, m)) in
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
            let algorithm = conv.algorithm().expect("an algorithm");
            assert_eq!(
                (algorithm.m, algorithm.r),
                (m, r),
                "case {seed}: the algorithm"
            );
            let len = batch * conv.out_image_len();
            let (mut winograd, mut im2col) = (vec![f32::NAN; len], vec![f32::NAN; len]);
            conv.winograd_forward(&x, &weight, &bias, &mut winograd);
            conv.im2col_forward(&x, &weight, &bias, &mut im2col);
            let diff = relative_difference(&winograd, &im2col);
            assert!(diff <= 1e-5, "case {seed}: max |Δ| = {diff} relative");
            assert!(im2col.iter().any(|&v| v > 0.0), "case {seed}: all zero");

            // The input and weight gradients of an output gradient, both ways.
            let grad = random(len, seed + 30);
            let mut winograd = vec![f32::NAN; x.len()];
            let weight_grad = conv.winograd_backward(&x, &weight, &grad, Some(&mut winograd));
            let mut col2im = vec![0.0; x.len()];
            conv.for_each_tile(&mut col2im, conv.image_len(), 1, |images, slots, p| {
                conv.input_grad(&weight, &grad, images, slots, p);
            });
            let diff = relative_difference(&winograd, &col2im);
            assert!(
                diff <= 1e-5,
                "case {seed}: input gradient max |Δ| = {diff} relative"
            );

            // The weight gradient, both ways: within 3e-5, as each weight's gradient sums
            // over every position of every image (4,500 products in case 15), in a different
            // order on each side (measured up to 5.2e-6 with gemm's AVX-512 or AVX2
            // kernels; F(2×2, 5×5), since replaced, reached 1.03e-5).
            let all = 0..batch;
            let im2col = conv.untranspose(&conv.weight_grad(&x, &grad, all, Parallelism::None));
            let diff = relative_difference(&weight_grad, &im2col);
            assert!(
                diff <= 3e-5,
                "case {seed}: weight gradient max |Δ| = {diff} relative"
            );
        }
    }
}
