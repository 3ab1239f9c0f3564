"""Where the exact PyTorch mirror spends a ``paper-mnist`` training minibatch (CPU or CUDA).

One call of the device tool measured the mirror at 44 ms per training sample on an H200,
no faster than the Numba core on two CPU cores (docs/results.md §9.8).  This script says
why: it times the simulation of one minibatch of the seed-0 network (the three phases of the
training order's first minibatch, the preset's batch of 125, T1 250 / T2 50; the update is not
timed) without a profiler, then profiles the second minibatch
with ``torch.profiler`` on the same network at a few steps (``--profile-t1``/``--profile-t2``,
default 10 / 2: the profiler's overhead made a whole minibatch outlast a 130 s call on the
H200) and prints the operators by device time and the number of GPU kernels launched (per
profiled minibatch and per simulated step, which the step count does not change).

Before profiling it times each convolution of a step both ways on spike-like 0/1 inputs of the
minibatch's shapes: as the mirror runs it (``F.conv2d`` / ``F.conv_transpose2d`` in its exact
mode, cuDNN off) and as one copy plus one GEMM over the whole batch
(:func:`batched_conv2d`, :func:`batched_conv_transpose2d`), and checks that the two give equal
results (float64 sums of integers below 2**53 are exact in any order).  The batched form is a
candidate for the mirror, measured here before any change to it.

Usage: ``python -m experiments.device.profile_mirror --device cuda --data-dir DIR/mnist``
(``--samples`` changes the batch; ``--t1``/``--t2`` the steps).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from neurochip.errors import command
from reference.common import Parser, build_network, load_train, minibatches
from reference.mirror import I64, Mirror, _crop, exact_mode, resolve_device


def batched_conv2d(x: torch.Tensor, k: torch.Tensor, stride: int = 1,
                   padding: int = 0) -> torch.Tensor:
    """``F.conv2d(x, k, stride=stride, padding=padding)`` as one copy and one GEMM.

    ``x`` (B, C, H, W), ``k`` (O, C, kh, kw) -> (B, O, Ho, Wo); the patches are a strided view of
    the (padded) input, so the whole batch is one matrix product."""
    if padding:
        x = F.pad(x, (padding,) * 4)
    kh, kw = k.shape[-2:]
    patches = x.unfold(2, kh, stride).unfold(3, kw, stride)        # (B, C, Ho, Wo, kh, kw)
    return torch.einsum("bcyxij,ocij->boyx", patches, k)


def batched_conv_transpose2d(y: torch.Tensor, k: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """``F.conv_transpose2d(y, k, stride=stride)``: a convolution of ``y`` spread out by
    ``stride`` (zeros between), padded by ``kh - 1``, with ``k`` flipped and its channels swapped.

    ``y`` (B, O, H, W), ``k`` (O, C, kh, kw) -> (B, C, (H-1)*stride+kh, (W-1)*stride+kw)."""
    bsz, o, h, w = y.shape
    kh, kw = k.shape[-2:]
    spread = y.new_zeros(bsz, o, (h - 1) * stride + 1, (w - 1) * stride + 1)
    spread[:, :, ::stride, ::stride] = y
    spread = F.pad(spread, (kw - 1, kw - 1, kh - 1, kh - 1))
    return batched_conv2d(spread, k.flip(-1, -2).transpose(0, 1))


def _median_seconds(fn, sync, reps: int) -> float:
    times = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def compare_convolutions(mirror: Mirror, bsz: int, sync, reps: int, out=print) -> bool:
    """Time every convolution of a step (forward, feedback) both ways; True iff all agree."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    all_equal = True
    out("convolution of one step, batch %d: mirror's step (F.conv*, cuDNN off) vs batched, median of %d"
        % (bsz, reps))
    for lay in mirror.layers:
        if lay.kind != "conv" or lay.is_max:
            continue
        k = mirror.kern[lay.index - 1]
        x = (torch.rand((bsz,) + tuple(lay.in_shape), generator=gen) < 0.2).to(k.dtype).to(k.device)
        y = (torch.rand((bsz,) + tuple(lay.shape), generator=gen) < 0.2).to(k.dtype).to(k.device)
        _, hin, win = lay.in_shape
        # the slow arm is the mirror's own step (its convolution and int64 result), so a change
        # there shows here as DIFFERENT; the batched arm computes the same from the same operands
        cases = (("forward", lambda: mirror._forward(lay, x)[0],
                  lambda: batched_conv2d(x, k, 2, lay.padding).to(I64)),
                 ("feedback", lambda: mirror._feedback(lay, y, None),
                  lambda: _crop(batched_conv_transpose2d(y, k, 2), lay.padding, hin, win).to(I64)))
        for name, slow, fast in cases:
            with exact_mode(k.device):
                equal = torch.equal(slow(), fast())
                t_slow = _median_seconds(slow, sync, reps)
                t_fast = _median_seconds(fast, sync, reps)
            all_equal &= equal
            out(f"  layer {lay.index} {name:<8} kernel {tuple(k.shape)}: {1e3 * t_slow:8.3f} ms vs "
                f"{1e3 * t_fast:8.3f} ms batched ({t_slow / t_fast:.1f}x), "
                f"{'equal' if equal else 'DIFFERENT'}")
    return all_equal


@command
def main(argv=None) -> int:
    p = Parser(prog="python -m experiments.device.profile_mirror", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="torch device: cuda (default) or cpu")
    p.add_argument("--data-dir", required=True, help="IDX folder of MNIST")
    p.add_argument("--samples", type=int, default=125, help="batch size (default 125, the preset's)")
    p.add_argument("--t1", type=int, default=None, help="free-phase steps (default: the preset's 250)")
    p.add_argument("--t2", type=int, default=None, help="nudged-phase steps (default: the preset's 50)")
    p.add_argument("--profile-t1", type=int, default=10, help="free-phase steps of the profiled pass")
    p.add_argument("--profile-t2", type=int, default=2, help="nudged-phase steps of the profiled pass")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions of each convolution")
    a = p.parse_args(argv)
    args = argparse.Namespace(preset="paper-mnist", arch=None, bits=8, pool="avg", samples=a.samples,
                              updates=2, seed=0, t1=a.t1, t2=a.t2, data_dir=a.data_dir)
    dev = resolve_device(a.device)
    net = build_network(args)
    x_all, y_all = load_train(args, net)
    b0, b1 = minibatches(net.seed, len(y_all), a.samples, 2)
    mirror = Mirror(net, dev)
    steps = net.hyper.t1 + 2 * net.hyper.t2
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    mirror.run(x_all[b0][:2], y_all[b0][:2], train=True)         # warm-up (allocations, kernels)
    sync()
    t0 = time.perf_counter()
    mirror.run(x_all[b0], y_all[b0], train=True)
    sync()
    wall = time.perf_counter() - t0
    print(f"paper-mnist mirror on {dev} (torch {torch.__version__}): one minibatch of {a.samples}, "
          f"{steps} steps (T1 {net.hyper.t1}, 2 x T2 {net.hyper.t2}): {wall:.2f} s, "
          f"{1e3 * wall / a.samples:.1f} ms per sample, {1e3 * wall / steps:.2f} ms per step")
    equal = compare_convolutions(mirror, a.samples, sync, a.reps)
    short = build_network(argparse.Namespace(**{**vars(args), "t1": a.profile_t1, "t2": a.profile_t2}))
    mirror = Mirror(short, dev)
    steps = short.hyper.t1 + 2 * short.hyper.t2
    mirror.run(x_all[b1][:2], y_all[b1][:2], train=True)         # warm-up at these steps
    sync()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        mirror.run(x_all[b1], y_all[b1], train=True)
        sync()
    key = "device_time_total" if dev.type == "cuda" else "cpu_time_total"
    avg = prof.key_averages()
    print(avg.table(sort_by=key, row_limit=18, max_name_column_width=48))
    if dev.type == "cuda":
        kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
        busy = sum(e.device_time for e in kernels) / 1e6       # us -> s
        print(f"GPU kernels: {len(kernels)} in the profiled minibatch ({steps} steps), "
              f"{len(kernels) / steps:.0f} per step; "
              f"kernel time {busy:.2f} s (profiled wall time includes the profiler's overhead)")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
