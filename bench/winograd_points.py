#!/usr/bin/env python3
"""Derives the Winograd transforms of alexnet-model/src/ops/flex/winograd.rs by Toom-Cook and
models their rounding.

For each algorithm F(m x m, r x r) it builds A^T, G and B^T with exact fractions from the
finite points and infinity, checks the 1-D identity y = A^T[(G g) * (B^T d)] exactly, prints the
matrices as winograd.rs writes them, and compares point sets: the outputs of a convolution
computed through the transforms in float32 against the direct convolution in float64, relative
to the largest output, on the cifar variant's layer shapes (inputs through a ReLU, as in the
network). Run by hand: python3 bench/winograd_points.py (needs numpy).
"""
from fractions import Fraction as Fr

import numpy as np


def polymul(a, b):
    out = [Fr(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


def toom_cook(m, r, points):
    """A^T [m, a], G [a, r], B^T [a, a] for F(m, r) on `points` (a - 1 of them) and infinity."""
    a = m + r - 1
    points = [Fr(p) for p in points]
    assert len(points) == a - 1
    at = [[p**i for p in points] + [Fr(int(i == m - 1))] for i in range(m)]
    g = []
    for j, p in enumerate(points):
        scale = Fr(1)
        for q in points[:j] + points[j + 1:]:
            scale *= p - q
        g.append([p**k / scale for k in range(r)])
    g.append([Fr(0)] * (r - 1) + [Fr(1)])
    bt = []
    for j in range(a):
        poly = [Fr(1)]
        for q in points[:j] + points[j + 1:] if j < a - 1 else points:
            poly = polymul(poly, [-q, Fr(1)])
        bt.append(poly + [Fr(0)] * (a - len(poly)))
    return at, g, bt


def check_exact(m, r, mats):
    """y = A^T[(G g) * (B^T d)] equals the correlation of d and g, in exact arithmetic."""
    at, g, bt = mats
    d = [Fr(3 * i * i - 7 * i + 2, i + 1) for i in range(m + r - 1)]
    k = [Fr(5 - 2 * i, 3) for i in range(r)]
    gk = [sum(row[j] * k[j] for j in range(r)) for row in g]
    bd = [sum(row[j] * d[j] for j in range(len(d))) for row in bt]
    y = [sum(row[j] * gk[j] * bd[j] for j in range(len(d))) for row in at]
    assert y == [sum(d[i + j] * k[j] for j in range(r)) for i in range(m)]


def winograd_conv(x, w, m, mats, dtype):
    """A 'same' convolution (stride 1, padding (r - 1) / 2) through the transforms, in dtype."""
    at, g, bt = (np.array(mat, dtype=np.float64).astype(dtype) for mat in mats)
    n, c, h, wd = x.shape
    r, a = w.shape[-1], m + w.shape[-1] - 1
    p, bh, bw = (r - 1) // 2, -(-h // m), -(-wd // m)
    padded = np.zeros((n, c, bh * m + r - 1, bw * m + r - 1), dtype)
    padded[:, :, p:p + h, p:p + wd] = x
    d = np.empty((n, c, bh, bw, a, a), dtype)
    for i in range(bh):
        for j in range(bw):
            d[:, :, i, j] = padded[:, :, i * m:i * m + a, j * m:j * m + a]
    v = np.einsum("ik,ncbdkl,jl->ncbdij", bt, d, bt).astype(dtype)
    u = np.einsum("ik,ockl,jl->ocij", g, w.astype(dtype), g).astype(dtype)
    prod = np.einsum("ocij,ncbdij->nobdij", u, v).astype(dtype)
    y = np.einsum("ik,nobdkl,jl->nobdij", at, prod, at).astype(dtype)
    return y.transpose(0, 1, 2, 4, 3, 5).reshape(n, -1, bh * m, bw * m)[:, :, :h, :wd]


def direct_conv(x, w):
    n, c, h, wd = x.shape
    r = w.shape[-1]
    p = (r - 1) // 2
    padded = np.zeros((n, c, h + 2 * p, wd + 2 * p))
    padded[:, :, p:p + h, p:p + wd] = x
    out = np.zeros((n, w.shape[0], h, wd))
    for u in range(r):
        for v in range(r):
            out += np.einsum("nchw,oc->nohw", padded[:, :, u:u + h, v:v + wd], w[:, :, u, v])
    return out


def rounding(m, r, points, channels, kernels, side, seeds=3):
    """Largest |float32 - float64| relative to the largest output, over `seeds` draws."""
    mats = toom_cook(m, r, points)
    worst = 0.0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        x = np.maximum(rng.standard_normal((2, channels, side, side)), 0)
        w = rng.standard_normal((kernels, channels, r, r)) / np.sqrt(channels * r * r)
        ref = direct_conv(x, w)
        y = winograd_conv(x, w, m, mats, np.float32)
        worst = max(worst, np.abs(y - ref).max() / np.abs(ref).max())
    return worst


def rust(x):
    return f"{x.numerator}.0" if x.denominator == 1 else f"{x.numerator}.0 / {x.denominator}.0"


# The algorithms winograd.rs derives this way, with its points (its F(2x2, 3x3) is Lavin and
# Gray's, whose point 0 and infinity rows have the opposite signs).
CHOSEN = {
    "F3X5": (3, 5, [0, 1, -1, 2, -2, Fr(-1, 2)]),
    "F4X3": (4, 3, [0, 1, -1, 2, Fr(-1, 2)]),
}
# Point sets compared, on a layer of the cifar variant: (m, r, points, layer, C, O, side).
COMPARED = [
    (2, 5, [0, 1, -1, 2, -2], "conv2", 48, 128, 15),
    (3, 5, [0, 1, -1, 2, -2, Fr(-1, 2)], "conv2", 48, 128, 15),
    (3, 5, [0, 1, -1, 2, -2, Fr(1, 2)], "conv2", 48, 128, 15),
    (3, 5, [0, 1, -1, 2, Fr(1, 2), Fr(-1, 2)], "conv2", 48, 128, 15),
    (4, 3, [0, 1, -1, 2, -2], "conv4", 192, 192, 7),
    (4, 3, [0, 1, -1, 2, Fr(-1, 2)], "conv4", 192, 192, 7),
]

if __name__ == "__main__":
    for name, (m, r, points) in CHOSEN.items():
        mats = toom_cook(m, r, points)
        check_exact(m, r, mats)
        print(f"{name}: F({m}x{m}, {r}x{r}) on {', '.join(map(str, points))}, infinity")
        for label, mat in zip(("output (A^T)", "kernel (G)", "input (B^T)"), mats):
            print(f"  {label}:")
            for row in mat:
                print("    " + ", ".join(rust(v) for v in row) + ",")
    print("\nfloat32 rounding relative to the largest output (float64 reference, 3 draws):")
    for m, r, points, layer, c, o, side in COMPARED:
        err = rounding(m, r, points, c, o, side)
        print(f"  F({m}x{m}, {r}x{r}) on {', '.join(map(str, points)):<24} {layer}: {err:.1e}")
