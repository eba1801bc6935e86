#!/usr/bin/env python3
"""PyTorch's time per operator in one cifar training step (forward, cross-entropy, backward,
SGD with momentum and weight decay), the same network, inputs and recipe as compare.py's
`train-cifar-*` workloads: where PyTorch spends a step, to set beside ours operation by
operation. Run by hand with compare.py's venv (see bench/README.md):

    ~/.cache/alexnet-burn-bench/venv/bin/python bench/torch_profile.py --batch 32 [--channels-last]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (the same model, inputs and recipe)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--steps", type=int, default=10, help="profiled steps (default 10)")
    args = ap.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args.threads)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = compare.build_model("cifar").to(memory_format=fmt)
    model.train()
    x = compare.random_input("cifar", args.batch).contiguous(memory_format=fmt)
    y = compare.random_labels("cifar", args.batch)
    opt = torch.optim.SGD(model.parameters(), lr=compare.TRAIN_LR, momentum=compare.MOMENTUM,
                          weight_decay=compare.WEIGHT_DECAY)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    print(f"cifar training step, batch {args.batch}, {args.threads} threads, "
          f"{'channels_last' if args.channels_last else 'NCHW'}: {seconds * 1e3:.1f} ms "
          f"({args.batch / seconds:.1f} images/s, unprofiled)")
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(args.steps):
            step()
    events = sorted(prof.key_averages(group_by_input_shape=True),
                    key=lambda e: -e.self_cpu_time_total)
    print(f"{'operator':42} {'ms/step':>8}  input shapes")
    for e in events[:20]:
        shapes = ", ".join(str(s) for s in e.input_shapes if s)
        print(f"{e.key:42} {e.self_cpu_time_total / args.steps / 1e3:8.2f}  {shapes[:70]}")


if __name__ == "__main__":
    main()
