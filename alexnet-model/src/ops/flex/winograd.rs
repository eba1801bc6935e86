//! 3×3 convolutions at stride 1 by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016): each 2×2 block of outputs
//! from its 4×4 input patch `d` and the 3×3 kernel `g` as `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, 16
//! products instead of 36. Over channels the element-wise products become 16 matrix
//! products, one per entry `ξ` of the 4×4 transforms: `M[ξ] = U[ξ] · V[ξ]`, `[O/g, C/g]`
//! kernels times `[C/g, tiles]` patches. The transforms only add, subtract and halve
//! (exact in floating point but for the sums' rounding), so the outputs match the direct
//! convolution to a few units in the last place.
//!
//! AlexNet's conv3–conv5 (13×13 maps in the ImageNet variants, 7×7 in cifar) are such
//! convolutions: they hold half of the torchvision variant's multiply-adds, which this cuts
//! by 1.9× (13×13: 7×7 blocks of 2×2 cover 14×14).

use std::ops::Range;

use gemm::Parallelism;
use rayon::prelude::*;

use multiversion::multiversion;

use super::{add_bias_relu, Conv, Scratch};

/// Entries of a 4×4 transform.
const XI: usize = 16;

/// Output positions per image from which Winograd runs faster than im2col + gemm, measured:
/// on the ImageNet variants' 13×13 maps it does (torchvision training step at batch 32 49–50
/// → 51–53 images/s with the input gradient too), on the cifar variant's 7×7 it does not
/// (cifar training step at batch 32: 454–460 images/s with it, 464–470 without; 7×7 needs
/// 4×4 blocks, which cover 8×8).
const MIN_POSITIONS: usize = 100;

/// Output blocks (matrix-product columns) a tile of images reaches at least (rounded up to a
/// power of two of images, so that batches of a power of two split evenly): a product of a
/// single 13×13 image (49 blocks) is too narrow for `gemm` to run at speed.
pub(super) const BLOCK_COLUMNS: usize = 196;

impl Conv {
    /// Whether [`winograd_forward`](Self::winograd_forward) computes this convolution: 3×3
    /// at stride 1, on maps of at least [`MIN_POSITIONS`] outputs.
    pub(super) fn winograd_fits(&self) -> bool {
        self.kernel == [3, 3] && self.stride == [1, 1] && self.cols() >= MIN_POSITIONS
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
    /// convolution's input gradient: its adjoint is a 3×3 convolution at stride 1 with
    /// padding `2 − p`.
    pub(super) fn winograd_input_grad_fits(&self) -> bool {
        self.winograd_fits() && self.padding.iter().all(|&p| p <= 2)
    }

    /// The input gradient `[N, C, H, W]` into `out` from the output gradient `grad` (`[N, O,
    /// H', W']`, the ReLU's mask applied): the correlation of `grad` with the kernels
    /// flipped and their channel axes swapped, padding `2 − p` (which gives back `H`, `W`).
    pub(super) fn winograd_input_grad(&self, grad: &[f32], weight: &[f32], out: &mut [f32]) {
        let [ph, pw] = self.padding;
        let adjoint = Conv {
            channels: self.kernels,
            kernels: self.channels,
            height: self.out_height,
            width: self.out_width,
            padding: [2 - ph, 2 - pw],
            out_height: self.height,
            out_width: self.width,
            ..*self
        };
        // flipped[g·C/g + c][k][u][v] = weight[g·O/g + k][c][2 − u][2 − v]
        let mut flipped = vec![0.0f32; weight.len()];
        let (kernels, channels) = (self.kernels, self.channels);
        flipped
            .par_chunks_exact_mut(kernels * 9)
            .enumerate()
            .for_each(|(gc, planes)| {
                let (g, c) = (gc / channels, gc % channels);
                for (k, plane) in planes.chunks_exact_mut(9).enumerate() {
                    let kernel = &weight[((g * kernels + k) * channels + c) * 9..][..9];
                    plane
                        .iter_mut()
                        .zip(kernel.iter().rev())
                        .for_each(|(f, &w)| *f = w);
                }
            });
        adjoint.winograd(grad, &flipped, None, out);
    }

    /// `conv2d(x, weight)` into `out` (`[N, O, H', W']`), plus the bias and through the ReLU
    /// when `bias` is given: per tile of images and group, the patches' transforms `V`, 16
    /// products `M[ξ] = U[ξ] · V[ξ]`, then the outputs' inverse transforms. A single tile
    /// (batch 1) runs its transforms and products in parallel instead.
    fn winograd(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
        let (kernels, channels) = (self.kernels, self.channels);
        let u = self.transform_kernels(weight);
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
            let [v, m] = scratch.buffers([channels * XI * width, XI * kernels * width]);
            for g in 0..self.groups {
                for_each_chunk(v, XI * width, parallel, |c, v| {
                    transform_patches(self, x, images.clone(), g * channels + c, v);
                });
                let u = &u[g * kernels * XI * channels..][..kernels * XI * channels];
                for_each_chunk(m, kernels * width, parallel, |xi, m| {
                    // [O/g, C/g] · [C/g, n·blocks]: U[ξ] rows `XI·C/g` apart, V[ξ] rows
                    // `XI·width` apart.
                    let lhs = (&u[xi * channels..], XI * channels);
                    let rhs = (&v[xi * width..], XI * width);
                    strided_matmul(m, [kernels, width], lhs, rhs, channels);
                });
                for (n, output) in outputs.chunks_exact_mut(out_len).enumerate() {
                    let planes = &mut output[g * kernels * self.cols()..][..kernels * self.cols()];
                    for_each_chunk(planes, self.cols(), parallel, |k, plane| {
                        let first = n * bh * bw;
                        let bias = bias.map(|b| b[g * kernels + k]);
                        transform_outputs(self, m, k, first, width, bias, plane);
                    });
                }
            }
        });
    }

    /// `U = G g Gᵀ` for every kernel plane `g`, `[O, XI, C/g]`: each kernel's 16 rows, one
    /// per entry `ξ`, each over its input channels.
    fn transform_kernels(&self, weight: &[f32]) -> Vec<f32> {
        let channels = self.channels;
        let mut u = vec![0.0f32; self.groups * self.kernels * XI * channels];
        u.par_chunks_exact_mut(XI * channels)
            .zip(weight.par_chunks_exact(channels * 9))
            .for_each(|(u, kernel)| {
                for (c, plane) in kernel.chunks_exact(9).enumerate() {
                    for (xi, value) in kernel_transform(plane).into_iter().enumerate() {
                        u[xi * channels + c] = value;
                    }
                }
            });
        u
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

/// `dst[m, n] = lhs[m, k] · rhs[k, n]`, `dst` row-major, the operands' rows the given
/// distance apart (their columns contiguous).
fn strided_matmul(
    dst: &mut [f32],
    [m, n]: [usize; 2],
    (lhs, lhs_rs): (&[f32], usize),
    (rhs, rhs_rs): (&[f32], usize),
    k: usize,
) {
    assert!(dst.len() >= m * n);
    assert!(m == 0 || lhs.len() >= (m - 1) * lhs_rs + k);
    assert!(k == 0 || rhs.len() >= (k - 1) * rhs_rs + n);
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
            false,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// `V = Bᵀ d B` for every 4×4 input patch `d` (zero outside the image) of input channel
/// `channel` of `images`, into `v` (`[XI, n·blocks]`): per block row, the four input rows
/// (zero padded) are combined first (`Bᵀ d`, whole rows at once), then each block's columns.
#[multiversion(targets = "simd")]
fn transform_patches(conv: &Conv, x: &[f32], images: Range<usize>, channel: usize, v: &mut [f32]) {
    let [bh, bw] = conv.blocks();
    let width = v.len() / XI;
    let (plane, w, pw) = (conv.plane(), conv.width, conv.padding[1]);
    // 2·⌈W'/2⌉ + 2 ≥ W + 2·pw: every padded input row fits.
    let padded = 2 * bw + 2;
    let mut rows = [0; 4].map(|_| vec![0.0f32; padded]);
    let mut t = [0; 4].map(|_| vec![0.0f32; padded]);
    for (n, image) in images.enumerate() {
        let input = &x[image * conv.image_len() + channel * plane..][..plane];
        for by in 0..bh {
            for (r, row) in rows.iter_mut().enumerate() {
                row.fill(0.0);
                let iy = (2 * by + r).wrapping_sub(conv.padding[0]);
                if iy < conv.height {
                    row[pw..pw + w].copy_from_slice(&input[iy * w..][..w]);
                }
            }
            for x in 0..padded {
                let [a, b, c, d] = [rows[0][x], rows[1][x], rows[2][x], rows[3][x]];
                [t[0][x], t[1][x], t[2][x], t[3][x]] = [a - c, b + c, c - b, b - d];
            }
            let first = n * bh * bw + by * bw;
            for (i, t) in t.iter().enumerate() {
                let mut out = v[4 * i * width..].chunks_exact_mut(width);
                let mut next = || &mut out.next().expect("4 rows")[first..][..bw];
                let [v0, v1, v2, v3] = [next(), next(), next(), next()];
                for bx in 0..bw {
                    let [a, b, c, d] = [t[2 * bx], t[2 * bx + 1], t[2 * bx + 2], t[2 * bx + 3]];
                    [v0[bx], v1[bx], v2[bx], v3[bx]] = [a - c, b + c, c - b, b - d];
                }
            }
        }
    }
}

/// Kernel `k`'s output plane `[H', W']` of one image (its blocks from column `first` of the
/// products `m`, `[XI, O/g, width]`): each block `Aᵀ M A` (all the image's blocks at once,
/// so that the loop vectorises); plus `bias` and through the ReLU if given.
#[multiversion(targets = "simd")]
fn transform_outputs(
    conv: &Conv,
    m: &[f32],
    k: usize,
    first: usize,
    width: usize,
    bias: Option<f32>,
    plane: &mut [f32],
) {
    let [bh, bw] = conv.blocks();
    let blocks = bh * bw;
    let (oh, ow) = (conv.out_height, conv.out_width);
    let m: [&[f32]; XI] =
        std::array::from_fn(|xi| &m[(xi * conv.kernels + k) * width + first..][..blocks]);
    // y[2·r + c]: output (r, c) of every block.
    let mut y = [0; 4].map(|_| vec![0.0f32; blocks]);
    let [y0, y1, y2, y3] = &mut y;
    let (y0, y1, y2, y3) = (
        &mut y0[..blocks],
        &mut y1[..blocks],
        &mut y2[..blocks],
        &mut y3[..blocks],
    );
    for b in 0..blocks {
        let [[a, c], [d, e]] = output_transform(&std::array::from_fn(|xi| m[xi][b]));
        [y0[b], y1[b], y2[b], y3[b]] = [a, c, d, e];
    }
    let mut row = vec![0.0f32; 2 * bw];
    for by in 0..bh {
        for r in 0..2 {
            let oy = 2 * by + r;
            if oy >= oh {
                continue;
            }
            let (left, right) = (&y[2 * r][by * bw..][..bw], &y[2 * r + 1][by * bw..][..bw]);
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

/// `G g Gᵀ` for a 3×3 kernel `g` (row-major), `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`.
fn kernel_transform(g: &[f32]) -> [f32; XI] {
    let g_t = |[a, b, c]: [f32; 3]| [a, (a + b + c) * 0.5, (a - b + c) * 0.5, c];
    // G g (4×3), column by column; then (·) Gᵀ, row by row.
    let t: [[f32; 4]; 3] = std::array::from_fn(|j| g_t([g[j], g[3 + j], g[6 + j]]));
    let mut u = [0.0f32; XI];
    for i in 0..4 {
        u[4 * i..4 * i + 4].copy_from_slice(&g_t([t[0][i], t[1][i], t[2][i]]));
    }
    u
}

/// `Aᵀ m A` for a 4×4 block of products `m` (row-major), `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`:
/// the 2×2 outputs.
fn output_transform(m: &[f32; XI]) -> [[f32; 2]; 2] {
    let a_t = |[a, b, c, d]: [f32; 4]| [a + b + c, b - c - d];
    let column = |j: usize| [m[j], m[4 + j], m[8 + j], m[12 + j]];
    // Aᵀ m (2×4), then (·) A (2×2).
    let t: [[f32; 2]; 4] = std::array::from_fn(|j| a_t(column(j)));
    [0, 1].map(|r| a_t([t[0][r], t[1][r], t[2][r], t[3][r]]))
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

    /// Winograd's outputs and input gradients equal im2col + gemm's and col2im's, on odd and
    /// even maps, padding 0–2, groups, and batches of one (parallel products), a few and more
    /// than a tile.
    #[test]
    fn winograd_equals_im2col() {
        let cases = [
            // batch, groups, channels per group, kernels per group, size, padding
            (1, 1, 3, 5, [13, 13], 1),
            (3, 2, 4, 3, [8, 7], 0),
            (17, 1, 5, 4, [7, 7], 1),
            (5, 2, 3, 6, [6, 9], 2),
            (2, 1, 2, 2, [3, 3], 0),
        ];
        for (seed, (batch, groups, channels, kernels, [h, w], padding)) in
            cases.into_iter().enumerate()
        {
            let x_shape = [batch, groups * channels, h, w];
            let w_shape = [groups * kernels, channels, 3, 3];
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
            let diff = winograd
                .iter()
                .zip(&im2col)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(diff <= 1e-5, "case {seed}: max |Δ| = {diff}");
            assert!(im2col.iter().any(|&v| v > 0.0), "case {seed}: all zero");

            // The input gradient of an output gradient, both ways.
            let grad = random(len, seed + 30);
            let (mut winograd, mut col2im) = (vec![f32::NAN; x.len()], vec![0.0; x.len()]);
            conv.winograd_input_grad(&grad, &weight, &mut winograd);
            conv.for_each_tile(&mut col2im, conv.image_len(), 1, |images, slots, p| {
                conv.input_grad(&weight, &grad, images, slots, p);
            });
            let diff = winograd
                .iter()
                .zip(&col2im)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(diff <= 1e-5, "case {seed}: input gradient max |Δ| = {diff}");
        }
    }
}
