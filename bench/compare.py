#!/usr/bin/env python3
"""Side-by-side CPU benchmark: our Rust binaries (Burn, flex backend) against PyTorch (NCHW
and channels_last), ONNX Runtime and OpenVINO, on the same AlexNet variants, threads and
timing rule. Run by hand (never in CI); see bench/README.md.

    python3 bench/compare.py                        # everything, 3 rounds (20-30 min on 2 cores)
    python3 bench/compare.py --quick --engines torch,ort --workloads infer-torchvision

The script creates its own virtual environment (default ~/.cache/alexnet-burn-bench/venv),
installs torch, onnx, onnxruntime, openvino and numpy there, and re-runs itself inside it.
Our binaries are not built here: build them first (`cargo build --release -p alexnet-infer
-p alexnet-train`).
"""
import argparse
import datetime
import fnmatch
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VENV = Path.home() / ".cache" / "alexnet-burn-bench" / "venv"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PACKAGES = ["torch", "onnx", "onnxruntime", "openvino", "numpy"]
IN_VENV_MARK = "ALEXNET_BENCH_IN_VENV"

ENGINES = {
    "ours": "ours (flex)",
    "base": "ours before (--base-bin-dir)",
    "torch": "PyTorch NCHW",
    "torch-cl": "PyTorch channels_last",
    "ort": "ONNX Runtime",
    "ov": "OpenVINO",
}
# Which engines can run which kind of workload.
KIND_ENGINES = {
    "infer": ["ours", "base", "torch", "torch-cl", "ort", "ov"],
    "train": ["ours", "base", "torch", "torch-cl"],
    "e2e": ["ours", "base", "torch", "torch-cl"],
}

# Training hyper-parameters of the synthetic training step (the paper's SGD).
TRAIN_LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
# The end-to-end recipe: alexnet-train's defaults (cifar variant, built-in CIFAR-10 sample).
E2E_BATCH, E2E_LR, E2E_SEED, E2E_PAD = 32, 0.02, 42, 4
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

# --------------------------------------------------------------------------------------------
# The networks, as alexnet-model/src/config.rs and layers.rs define them.
# --------------------------------------------------------------------------------------------

# LrnPreset::CudaConvnet, the paper variant's default (PyTorch's alpha/size convention).
LRN = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)


@dataclass(frozen=True)
class Spec:
    """One variant: conv1..conv5 as (out, kernel, stride, padding, groups), and the rest."""

    convs: tuple
    lrn: bool  # conv -> ReLU -> LRN -> pool after conv1 and conv2
    avgpool: int  # adaptive average pool side before flatten, 0 for none
    flatten: int  # fc6 inputs
    hidden: int  # fc6 / fc7 width
    dropout_before: bool  # torchvision: dropout before fc6/fc7; paper and cifar: after
    input_size: int
    classes: int
    params: int  # what `alexnet-infer info --variant V` prints


SPECS = {
    "torchvision": Spec(
        ((64, 11, 4, 2, 1), (192, 5, 1, 2, 1), (384, 3, 1, 1, 1), (256, 3, 1, 1, 1),
         (256, 3, 1, 1, 1)),
        lrn=False, avgpool=6, flatten=256 * 6 * 6, hidden=4096, dropout_before=True,
        input_size=224, classes=1000, params=61_100_840),
    "paper": Spec(
        ((96, 11, 4, 2, 1), (256, 5, 1, 2, 2), (384, 3, 1, 1, 1), (384, 3, 1, 1, 2),
         (256, 3, 1, 1, 2)),
        lrn=True, avgpool=0, flatten=256 * 6 * 6, hidden=4096, dropout_before=False,
        input_size=224, classes=1000, params=60_965_224),
    "cifar": Spec(
        ((48, 5, 1, 2, 1), (128, 5, 1, 2, 1), (192, 3, 1, 1, 1), (192, 3, 1, 1, 1),
         (128, 3, 1, 1, 1)),
        lrn=False, avgpool=0, flatten=128 * 3 * 3, hidden=1024, dropout_before=False,
        input_size=32, classes=10, params=3_172_554),
}


def build_model(variant):
    """The variant as one torch.nn.Sequential, PyTorch's default initialisation, seed 0."""
    import torch
    from torch import nn

    spec = SPECS[variant]
    torch.manual_seed(0)
    layers, channels, side = [], 3, spec.input_size
    for i, (out, kernel, stride, padding, groups) in enumerate(spec.convs):
        layers += [nn.Conv2d(channels, out, kernel, stride=stride, padding=padding,
                             groups=groups),
                   nn.ReLU(inplace=True)]
        side = (side + 2 * padding - kernel) // stride + 1
        if spec.lrn and i < 2:
            layers.append(nn.LocalResponseNorm(**LRN))
        if i in (0, 1, 4):  # overlapping 3x3 / 2 max pools after conv1, conv2, conv5
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
            side = (side - 3) // 2 + 1
        channels = out
    if spec.avgpool:
        layers.append(nn.AdaptiveAvgPool2d(spec.avgpool))
        side = spec.avgpool
    layers.append(nn.Flatten())
    assert channels * side * side == spec.flatten, (variant, channels, side)
    h, p = spec.hidden, 0.5
    if spec.dropout_before:
        classifier = [nn.Dropout(p), nn.Linear(spec.flatten, h), nn.ReLU(inplace=True),
                      nn.Dropout(p), nn.Linear(h, h), nn.ReLU(inplace=True),
                      nn.Linear(h, spec.classes)]
    else:
        classifier = [nn.Linear(spec.flatten, h), nn.ReLU(inplace=True), nn.Dropout(p),
                      nn.Linear(h, h), nn.ReLU(inplace=True), nn.Dropout(p),
                      nn.Linear(h, spec.classes)]
    model = nn.Sequential(*layers, *classifier)
    n = sum(t.numel() for t in model.parameters())
    assert n == spec.params, f"{variant}: {n:,} parameters, ours has {spec.params:,}"
    return model


def random_input(variant, batch):
    """The same seeded random images for every Python engine."""
    import torch

    side = SPECS[variant].input_size
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 3, side, side, generator=g)


def random_labels(variant, batch):
    import torch

    g = torch.Generator().manual_seed(2)
    return torch.randint(0, SPECS[variant].classes, (batch,), generator=g)


# --------------------------------------------------------------------------------------------
# Workloads, measurements and the timing rule.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    kind: str  # infer, train or e2e
    variant: str
    batch: int

    @property
    def name(self):
        if self.kind == "e2e":
            return f"e2e-{self.variant}"
        return f"{self.kind}-{self.variant}-b{self.batch}"

    @property
    def title(self):
        if self.kind == "e2e":
            return f"end-to-end {self.variant} training (sample, batch {self.batch})"
        what = "inference" if self.kind == "infer" else "training step"
        return f"{self.variant} {what}, batch {self.batch}"


@dataclass
class Sample:
    """One measurement of one engine on one workload in one round."""

    workload: str
    engine: str
    round: int
    images_per_s: float = None  # None: not available (see error)
    passes: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    error: str = None


def timed(step, batch, args):
    """Warm-up passes, then timed passes until at least --iters and --min-seconds — the rule
    of `alexnet-infer bench`. Returns (passes, seconds, images/s)."""
    for _ in range(args.warmup):
        step()
    passes, start = 0, time.perf_counter()
    while passes < args.iters or time.perf_counter() - start < args.min_seconds:
        step()
        passes += 1
    seconds = time.perf_counter() - start
    return passes, seconds, batch * passes / seconds


# --------------------------------------------------------------------------------------------
# Engines: one function each, (workload, args) -> Sample fields.
# --------------------------------------------------------------------------------------------


def engine_ours(wl, args, bin_dir=None):
    """Our binaries: `alexnet-infer bench` / `alexnet-train bench` (one JSON line) or, for
    e2e, the default `alexnet-train` run, read back from its summary.json."""
    bin_dir = bin_dir or args.bin_dir
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    if wl.kind == "e2e":
        return ours_e2e(wl, args, env, bin_dir)
    binary = bin_dir / ("alexnet-infer" if wl.kind == "infer" else "alexnet-train")
    if not binary.exists():
        raise RuntimeError(f"{binary} not found (cargo build --release first)")
    cmd = [str(binary), "bench", "--variant", wl.variant, "--batch-size", str(wl.batch),
           "--backend", "flex", "--format", "json", "--warmup", str(args.warmup),
           "--iters", str(args.iters), "--min-seconds", str(args.min_seconds)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no output)"]
        raise RuntimeError(f"`{binary.name} bench` failed: {lines[0]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"`{binary.name} bench` printed no JSON line: {done.stdout!r:.200}")
    report = json.loads(lines[-1])
    return dict(images_per_s=report["images_per_s"], passes=report["iterations"],
                seconds=report["seconds"], extra={"report": report})


def engine_base(wl, args):
    """Our binaries of an earlier commit (`--base-bin-dir`), to measure a change side by
    side with what came before it."""
    if args.base_bin_dir is None:
        raise RuntimeError("no --base-bin-dir given")
    return engine_ours(wl, args, args.base_bin_dir)


def ours_e2e(wl, args, env, bin_dir):
    binary = bin_dir / "alexnet-train"
    if not binary.exists():
        raise RuntimeError(f"{binary} not found (cargo build --release first)")
    with tempfile.TemporaryDirectory(prefix="alexnet-bench-") as out:
        cmd = [str(binary), "--epochs", str(args.e2e_epochs), "--backend", "flex",
               "--out-dir", out, "--run-name", "bench", "--quiet"]
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["(no output)"]
            raise RuntimeError(f"alexnet-train failed: {lines[-1]}")
        summary = json.loads((Path(out) / "bench" / "summary.json").read_text())
        metrics = (Path(out) / "bench" / "metrics.csv").read_text()
    return dict(images_per_s=summary["train_images_per_second"], passes=summary["epochs"],
                seconds=wall,
                extra=dict(wall_s=wall, epochs_s=summary["wall_seconds"],
                           val_top1=summary["final_scores"]["top1"], metrics_csv=metrics))


def engine_torch(wl, args, channels_last=False):
    """PyTorch eager, NCHW or channels_last (NHWC in memory: model and input converted)."""
    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if wl.kind == "e2e":
        return torch_e2e(args, fmt)
    model = build_model(wl.variant).to(memory_format=fmt)
    x = random_input(wl.variant, wl.batch).contiguous(memory_format=fmt)
    if wl.kind == "infer":
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
    else:
        model.train()  # dropout active
        y = random_labels(wl.variant, wl.batch)
        loss_fn = torch.nn.CrossEntropyLoss()
        opt = torch.optim.SGD(model.parameters(), lr=TRAIN_LR, momentum=MOMENTUM,
                              weight_decay=WEIGHT_DECAY)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            loss.item()
    passes, seconds, ips = timed(step, wl.batch, args)
    return dict(images_per_s=ips, passes=passes, seconds=seconds)


def engine_torch_cl(wl, args):
    return engine_torch(wl, args, channels_last=True)


def engine_ort(wl, args):
    """ONNX Runtime, CPU execution provider, all graph optimisations, T intra-op threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(export_onnx(wl.variant, args)), so,
                                   providers=["CPUExecutionProvider"])
    x = random_input(wl.variant, wl.batch).numpy()
    diff = max_abs_diff(session.run(None, {"images": x})[0], wl)
    passes, seconds, ips = timed(lambda: session.run(None, {"images": x}), wl.batch, args)
    return dict(images_per_s=ips, passes=passes, seconds=seconds,
                extra={"max_abs_diff_vs_torch": diff})


def engine_ov(wl, args):
    """OpenVINO CPU plugin: the ONNX file reshaped to this batch (static shapes), T inference
    threads, LATENCY hint (one stream), f32 precision forced (it would pick bf16 on CPUs with
    AVX512_BF16/AMX), one synchronous infer request."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    core = ov.Core()
    model = core.read_model(str(export_onnx(wl.variant, args)))
    side = SPECS[wl.variant].input_size
    model.reshape([wl.batch, 3, side, side])
    config = {
        props.inference_num_threads: args.threads,
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        hints.inference_precision: ov.Type.f32,
    }
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    x = random_input(wl.variant, wl.batch).numpy()
    diff = max_abs_diff(request.infer({0: x}, share_inputs=True)[0], wl)
    passes, seconds, ips = timed(lambda: request.infer({0: x}, share_inputs=True), wl.batch,
                                 args)
    precision = compiled.get_property(hints.inference_precision).get_type_name()
    return dict(images_per_s=ips, passes=passes, seconds=seconds,
                extra={"max_abs_diff_vs_torch": diff, "precision": precision})


ENGINE_FUNCTIONS = {
    "ours": engine_ours,
    "base": engine_base,
    "torch": engine_torch,
    "torch-cl": engine_torch_cl,
    "ort": engine_ort,
    "ov": engine_ov,
}

_onnx_files = {}
_references = {}


def export_onnx(variant, args):
    """The torch model (eval mode) as ONNX, batch axis dynamic; exported once per variant.
    torch.nn.LocalResponseNorm has no ONNX counterpart in the exporter, so the paper variant's
    LRN becomes its decomposition (pow, pad, average pool, ...)."""
    import torch

    if variant not in _onnx_files:
        path = Path(args.workdir) / f"alexnet-{variant}.onnx"
        model = build_model(variant).eval()
        x = random_input(variant, 2)
        dynamic = {"images": {0: "batch"}, "logits": {0: "batch"}}
        options = dict(input_names=["images"], output_names=["logits"], dynamic_axes=dynamic,
                       opset_version=17)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "legacy TorchScript-based ONNX export"
            try:  # the TorchScript exporter: one self-contained file, no onnxscript needed
                torch.onnx.export(model, (x,), str(path), dynamo=False, **options)
            except TypeError:  # torch before the dynamo switch
                torch.onnx.export(model, (x,), str(path), **options)
        _onnx_files[variant] = path
    return _onnx_files[variant]


def max_abs_diff(output, wl):
    """Largest difference between an ONNX engine's logits and PyTorch's on the same input."""
    import numpy as np
    import torch

    key = (wl.variant, wl.batch)
    if key not in _references:
        with torch.no_grad():
            _references[key] = build_model(wl.variant).eval()(random_input(*key)).numpy()
    ref = _references[key]
    diff = float(np.max(np.abs(np.asarray(output) - ref)))
    if diff > 1e-3 * max(1.0, float(np.max(np.abs(ref)))):
        print(f"warning: {wl.name}: logits differ from PyTorch's by {diff:.3g}", file=sys.stderr)
    return diff


# --------------------------------------------------------------------------------------------
# End to end: alexnet-train's default run, written again in PyTorch.
# --------------------------------------------------------------------------------------------


def read_cifar(files):
    """CIFAR-10 binary records: 1 label byte, 3072 image bytes (R, G, B planes of 32x32)."""
    import numpy as np

    raw = np.concatenate([np.fromfile(f, dtype=np.uint8) for f in files]).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def torch_e2e(args, fmt):
    """The default `alexnet-train` recipe on the same files: cifar variant, batch 32, SGD lr
    0.02 momentum 0.9 weight decay 5e-4, cosine schedule stepped per epoch, 4-pixel zero-pad
    random crop + horizontal flip, CIFAR mean/std, validation (center view) every epoch, a
    checkpoint (model + optimizer) written every epoch. Augmentation runs inline (ours runs it
    on one loader thread beside the training). `fmt`: the model's and batches' memory format."""
    import numpy as np
    import torch

    start = time.perf_counter()
    data = REPO / "data" / "cifar-10-sample"
    train_x, train_y = read_cifar([data / f"data_batch_{i}.bin" for i in range(1, 6)])
    val_x, val_y = read_cifar([data / "test_batch.bin"])
    mean = np.array(CIFAR_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(CIFAR_STD, dtype=np.float32).reshape(1, 3, 1, 1)

    def normalise(images):
        x = torch.from_numpy(((images.astype(np.float32) / 255.0 - mean) / std))
        return x.contiguous(memory_format=fmt)

    p = E2E_PAD
    padded = np.pad(train_x, ((0, 0), (0, 0), (p, p), (p, p)))  # zero pixels
    val_t, val_labels = normalise(val_x), torch.from_numpy(val_y)
    model = build_model("cifar").to(memory_format=fmt)  # seed 0, as every other workload
    rng = np.random.default_rng(E2E_SEED)  # order, crops, flips
    torch.manual_seed(E2E_SEED)  # dropout
    opt = torch.optim.SGD(model.parameters(), lr=E2E_LR, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    loss_fn = torch.nn.CrossEntropyLoss()
    epochs, n = args.e2e_epochs, len(train_y)
    train_images, train_seconds, epochs_seconds, val_top1 = 0, 0.0, 0.0, 0.0
    with tempfile.TemporaryDirectory(prefix="alexnet-bench-torch-") as out:
        for epoch in range(1, epochs + 1):
            lr = 0.5 * E2E_LR * (1 + math.cos(math.pi * (epoch - 1) / epochs))
            for group in opt.param_groups:
                group["lr"] = lr
            epoch_start = time.perf_counter()
            model.train()
            order = rng.permutation(n)
            for b in range(0, n, E2E_BATCH):
                ids = order[b:b + E2E_BATCH]
                dx, dy = rng.integers(0, 2 * p + 1, size=(2, len(ids)))
                flip = rng.random(len(ids)) < 0.5
                crops = np.stack([padded[i, :, y:y + 32, x:x + 32] for i, x, y in zip(ids, dx, dy)])
                crops[flip] = crops[flip, :, :, ::-1]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(normalise(crops)), torch.from_numpy(train_y[ids]))
                loss.backward()
                opt.step()
                loss.item()
                train_images += len(ids)
            train_seconds += time.perf_counter() - epoch_start
            model.eval()
            correct = 0
            with torch.no_grad():
                for b in range(0, len(val_labels), E2E_BATCH):
                    logits = model(val_t[b:b + E2E_BATCH])
                    loss_fn(logits, val_labels[b:b + E2E_BATCH]).item()
                    correct += int((logits.argmax(1) == val_labels[b:b + E2E_BATCH]).sum())
            val_top1 = correct / len(val_labels)
            epochs_seconds += time.perf_counter() - epoch_start
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()},
                       Path(out) / "checkpoint.pt")
    wall = time.perf_counter() - start
    return dict(images_per_s=train_images / train_seconds, passes=epochs, seconds=wall,
                extra=dict(wall_s=wall, epochs_s=epochs_seconds, val_top1=val_top1))


# --------------------------------------------------------------------------------------------
# Running the rounds, reporting.
# --------------------------------------------------------------------------------------------


def workloads(args):
    all_ = [Workload("infer", v, b) for v in args.variants for b in args.batches]
    all_ += [Workload("train", "cifar", 32), Workload("train", "cifar", 128),
             Workload("train", "torchvision", 32)]
    if not args.skip_e2e:
        all_.append(Workload("e2e", "cifar", E2E_BATCH))
    if not args.workloads:
        return all_

    def wanted(wl):
        return any(fnmatch.fnmatch(wl.name, pat) or wl.name.startswith(pat + "-")
                   for pat in args.workloads)

    return [wl for wl in all_ if wanted(wl)]


def run_rounds(args, wls):
    samples = []
    for r in range(args.rounds):
        for wl in wls:
            engines = [e for e in KIND_ENGINES[wl.kind] if e in args.engines]
            if not engines:
                continue
            k = r % len(engines)
            for engine in engines[k:] + engines[:k]:  # rotate the order every round
                s = Sample(wl.name, engine, r + 1)
                try:
                    s.__dict__.update(ENGINE_FUNCTIONS[engine](wl, args))
                    unit = "epochs" if wl.kind == "e2e" else "passes"
                    note = f"{s.images_per_s:8.1f} images/s ({s.passes} {unit}, {s.seconds:.1f} s)"
                except Exception as e:  # noqa: BLE001 - one engine failing is a result too
                    text = str(e) if isinstance(e, RuntimeError) else f"{type(e).__name__}: {e}"
                    s.error = (text.splitlines() or ["?"])[0]
                    note = f"n/a: {s.error}"
                print(f"[round {r + 1}/{args.rounds}] {wl.name:24} {engine:9} {note}",
                      file=sys.stderr, flush=True)
                samples.append(s)
    return samples


def stats(samples, wl, engine):
    values = [s.images_per_s for s in samples
              if s.workload == wl.name and s.engine == engine and s.images_per_s]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt_cell(st):
    if st is None:
        return "n/a"
    med, lo, hi = st
    return f"{med:.1f}" if lo == hi else f"{med:.1f} ({lo:.1f}–{hi:.1f})"


def markdown(args, wls, samples, meta):
    engines = [e for e in ENGINES if e in args.engines]
    lines = [f"# AlexNet on CPU: ours against PyTorch, ONNX Runtime, OpenVINO ({meta['date']})",
             "",
             f"- machine: {meta['machine']['model_name']}, {meta['machine']['cores']} cores, "
             f"AVX-512F {'yes' if meta['machine']['avx512f'] else 'no'}; load average at "
             f"start {meta['load_average'][0]:.2f}",
             f"- {args.threads} threads for every engine; {args.rounds} round(s), engines "
             f"alternating; warm-up {args.warmup}, then at least {args.iters} passes and "
             f"{args.min_seconds} s; fp32, random weights and inputs",
             f"- commit {meta['git']['commit']}"
             f"{' (with local changes)' if meta['git']['dirty'] else ''}; "
             + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
             "",
             "## Images/s (median over rounds, min–max)",
             "",
             "| workload | " + " | ".join(ENGINES[e] for e in engines) + " |",
             "|---|" + "---:|" * len(engines)]
    for wl in wls:
        cells = [fmt_cell(stats(samples, wl, e)) if e in KIND_ENGINES[wl.kind] else ""
                 for e in engines]
        lines.append(f"| {wl.title} | " + " | ".join(cells) + " |")
    others = [e for e in engines if e != "ours"]
    if "ours" in engines and others:
        lines += ["", "## Ours / other engine (median images/s; above 1: ours is faster)", "",
                  "| workload | " + " | ".join(f"vs {ENGINES[e]}" for e in others) + " |",
                  "|---|" + "---:|" * len(others)]
        for wl in wls:
            ours = stats(samples, wl, "ours")
            cells = []
            for e in others:
                other = stats(samples, wl, e)
                ok = ours and other and e in KIND_ENGINES[wl.kind]
                cells.append(f"{ours[0] / other[0]:.2f}×" if ok else "")
            lines.append(f"| {wl.title} | " + " | ".join(cells) + " |")
    e2e = [wl for wl in wls if wl.kind == "e2e"]
    if e2e:
        epochs = f"{args.e2e_epochs} epoch" + "s" * (args.e2e_epochs != 1)
        lines += ["", f"## End to end ({epochs}; medians over rounds)", "",
                  "| engine | training images/s | epochs (train + val) s | whole run s "
                  "| final val top-1 |", "|---|---:|---:|---:|---:|"]
        for wl in e2e:
            for e in KIND_ENGINES["e2e"]:
                got = [s for s in samples
                       if s.workload == wl.name and s.engine == e and s.images_per_s]
                if e not in engines or not got:
                    continue
                med = {k: statistics.median(s.extra[k] for s in got)
                       for k in ("wall_s", "epochs_s", "val_top1")}
                lines.append(f"| {ENGINES[e]} | {fmt_cell(stats(samples, wl, e))} | "
                             f"{med['epochs_s']:.1f} | {med['wall_s']:.1f} | "
                             f"{100 * med['val_top1']:.1f} % |")
    errors = sorted({(s.workload, s.engine, s.error) for s in samples if s.error})
    if errors:
        lines += ["", "## Not available", ""]
        lines += [f"- {w}, {ENGINES[e]}: {err}" for w, e, err in errors]
    return "\n".join(lines) + "\n"


def machine():
    info = {"model_name": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "avx512f": False, "logical_cpus": os.cpu_count()}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = {k.strip(): v.strip() for k, _, v in
                  (line.partition(":") for line in text.splitlines())}
        info["model_name"] = fields.get("Model name", info["model_name"])
        per_socket, sockets = fields.get("Core(s) per socket"), fields.get("Socket(s)")
        if per_socket and sockets and per_socket.isdigit() and sockets.isdigit():
            info["cores"] = int(per_socket) * int(sockets)
        info["avx512f"] = "avx512f" in fields.get("Flags", "").split()
    except OSError:
        pass
    return info


def versions():
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def git_info():
    def git(*a):
        return subprocess.run(["git", "-C", str(REPO), *a], capture_output=True,
                              text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def ours_version(args):
    binary = args.bin_dir / "alexnet-infer"
    if not binary.exists():
        return None
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    return {"version": done.stdout.strip(),
            "built": datetime.datetime.fromtimestamp(binary.stat().st_mtime).isoformat()}


def output_paths(args, now):
    if args.out:
        md = Path(args.out)
    else:
        base = REPO / "bench" / "results" / f"compare-{now:%Y-%m-%d}"
        md, k = base.with_suffix(".md"), 2
        while md.exists():  # several runs a day: compare-<date>-2.md, ...
            md, k = base.with_name(f"{base.name}-{k}.md"), k + 1
    return md, md.with_suffix(".json")


# --------------------------------------------------------------------------------------------
# Command line and the virtual environment.
# --------------------------------------------------------------------------------------------


def comma_list(text):
    return [v.strip() for v in text.split(",") if v.strip()]


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", type=comma_list, default=list(ENGINES),
                    help=f"comma list of {', '.join(ENGINES)} (default: all)")
    ap.add_argument("--workloads", type=comma_list, default=[],
                    help="comma list of workload names or patterns, e.g. infer, "
                         "infer-torchvision-b32, train-cifar-*, e2e (default: all)")
    ap.add_argument("--variants", type=comma_list, default=["torchvision", "paper", "cifar"],
                    help="inference variants (default: torchvision,paper,cifar)")
    ap.add_argument("--batches", type=lambda t: [int(b) for b in comma_list(t)],
                    default=[1, 32], help="inference batch sizes (default: 1,32)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads for every engine (default: os.cpu_count())")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="untimed passes first (default 2)")
    ap.add_argument("--iters", type=int, default=5, help="at least this many timed passes")
    ap.add_argument("--min-seconds", type=float, default=3.0,
                    help="and at least this many seconds (default 3)")
    ap.add_argument("--e2e-epochs", type=int, default=10,
                    help="epochs of the end-to-end run (default 10, alexnet-train's)")
    ap.add_argument("--skip-e2e", action="store_true", help="leave out the end-to-end run")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 round, --min-seconds 0.5, --iters 2, 1 warm-up, "
                         "1 e2e epoch")
    ap.add_argument("--bin-dir", type=Path, default=REPO / "target" / "release",
                    help="where alexnet-infer and alexnet-train are (default target/release)")
    ap.add_argument("--base-bin-dir", type=Path,
                    help="the same binaries built from an earlier commit (engine `base`), e.g. "
                         "`git worktree add /tmp/base <commit>` and a release build there")
    ap.add_argument("--out", help="Markdown report (default "
                                  "bench/results/compare-<date>.md; JSON written beside it)")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                    help=f"virtual environment to create/use (default {DEFAULT_VENV})")
    ap.add_argument("--no-venv", action="store_true",
                    help="use the running interpreter as it is (packages already installed)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.min_seconds, args.iters, args.warmup = 1, 0.5, 2, 1
        args.e2e_epochs = 1
    unknown = [e for e in args.engines if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    unknown = [v for v in args.variants if v not in SPECS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}")
    if args.threads < 1 or args.rounds < 1 or args.iters < 1:
        ap.error("--threads, --rounds and --iters must be at least 1")
    return args


def ensure_venv(args):
    """Create the venv and install the packages if needed, then re-run this script in it."""
    venv = args.venv.expanduser()
    python = venv / "bin" / "python"
    if args.no_venv or os.environ.get(IN_VENV_MARK) == str(venv):
        return
    if not python.exists():
        print(f"creating {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = "import " + ", ".join(PACKAGES)
    if subprocess.run([str(python), "-c", probe], capture_output=True).returncode != 0:
        pip = [str(python), "-m", "pip", "install"]
        print("installing torch (CPU wheels first)", file=sys.stderr)
        cpu = subprocess.run(pip + ["--retries", "0", "--timeout", "20", "--index-url",
                                    TORCH_CPU_INDEX, "torch"])
        if cpu.returncode != 0:
            print(f"{TORCH_CPU_INDEX} not reachable: torch from PyPI (with CUDA libraries, "
                  "several GB)", file=sys.stderr)
            subprocess.run(pip + ["torch"], check=True)
        subprocess.run(pip + [p for p in PACKAGES if p != "torch"], check=True)
    env = dict(os.environ, **{IN_VENV_MARK: str(venv)})
    os.execve(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]], env)


def main(argv):
    args = parse_args(argv)
    # Before torch, onnxruntime or openvino is imported (here or in the venv's run).
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    ensure_venv(args)
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    wls = workloads(args)
    if not wls:
        sys.exit("no workload matches --workloads")
    now = datetime.datetime.now()
    md_path, json_path = output_paths(args, now)
    meta = {"date": f"{now:%Y-%m-%d %H:%M}", "machine": machine(), "versions": versions(),
            "git": git_info(), "ours": ours_version(args), "load_average": os.getloadavg()}
    if meta["load_average"][0] > 0.5:
        print(f"warning: load average {meta['load_average'][0]:.2f}: something else is running; "
              "the OpenMP engines (PyTorch) slow down badly when they share cores",
              file=sys.stderr)
    args.bin_dir = args.bin_dir.resolve()
    if args.base_bin_dir is not None:
        args.base_bin_dir = args.base_bin_dir.resolve()
    elif "base" in args.engines:
        args.engines.remove("base")
    with tempfile.TemporaryDirectory(prefix="alexnet-bench-onnx-") as workdir:
        args.workdir = workdir
        samples = run_rounds(args, wls)
    report = markdown(args, wls, samples, meta)
    print(report)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(report)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k != "workdir"}
    json_path.write_text(json.dumps(
        {**meta, "settings": settings, "workloads": [asdict(w) | {"name": w.name} for w in wls],
         "samples": [asdict(s) for s in samples]}, indent=1) + "\n")
    print(f"wrote {md_path} and {json_path.name}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
