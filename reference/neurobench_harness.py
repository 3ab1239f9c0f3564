"""NeuroBench's own ``Benchmark`` on :func:`reference.torch_port.to_torch`, next to ``neurochip.budget``.

``run_neurobench(net, x_fp, labels)`` wraps the port in NeuroBench's
``SNNTorchModel``, feeds it the input encoder's spikes (the pre-processing,
:func:`~reference.torch_port.input_spike_train`, ``(B, T1, C, H, W)``) and
runs ``Benchmark.run()`` with Footprint, ConnectionSparsity,
ClassificationAccuracy (the port's prediction: first maximum of the output
state after T1 calls, the core's rule), ActivationSparsity,
SynapticOperations and MembraneUpdates.  ``ours(net, x_fp, labels)`` is
``neurochip.budget``'s results dict for the same images (free phase).

Command (prints both dicts and the differences)::

    python -m reference.neurobench_harness --preset digits --samples 100 [--checkpoint CKPT]
"""
from __future__ import annotations

import sys

import numpy as np

from neurochip.errors import ArgumentParser, UserError, command
from neurochip.network import Network

from .torch_port import input_spike_train, to_torch

SNNTORCH_BUFFER_BYTES = 16     # threshold f32 + graded_spikes_factor f32 + reset_mechanism_val i64


def _neurobench():
    try:
        from neurobench.benchmarks import Benchmark
        from neurobench.metrics.static import ConnectionSparsity, Footprint
        from neurobench.metrics.workload import (ActivationSparsity, ClassificationAccuracy,
                                                 MembraneUpdates, SynapticOperations)
        from neurobench.models import SNNTorchModel
    except ImportError as exc:
        raise UserError(f"the NeuroBench harness needs neurobench and snntorch ({exc})") from None
    return (Benchmark, SNNTorchModel, [Footprint, ConnectionSparsity],
            [ClassificationAccuracy, ActivationSparsity, SynapticOperations, MembraneUpdates])


def run_neurobench(net: Network, x_fp, labels, batch_size: int = 10) -> dict:
    """NeuroBench's ``Benchmark.run()`` results on the torch port for these images."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    benchmark_cls, model_cls, static, workload = _neurobench()
    port = to_torch(net)
    data = TensorDataset(input_spike_train(net, x_fp),
                         torch.as_tensor(np.asarray(labels, np.int64)))
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    model = model_cls(port)
    bench = benchmark_cls(model, loader, [], [lambda spikes: port.predictions()],
                          [static, workload])
    return bench.run(quiet=True)


def ours(net: Network, x_fp, labels) -> dict:
    """``neurochip.budget``'s NeuroBench results dict for the same images (inference)."""
    from neurochip.budget.report import build_report, simulate_samples
    counts, rasters, _, preds = simulate_samples(net, x_fp, labels, train=False)
    rep = build_report(net, None, counts, rasters, predictions=preds, labels=labels)
    return rep["neurobench_results"]


def _flat(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


@command
def main(argv=None) -> int:
    """``python -m reference.neurobench_harness``: NeuroBench's figures next to ours."""
    from neurochip.data import load_test_images
    from neurochip.network import get_preset
    p = ArgumentParser(prog="python -m reference.neurobench_harness",
                       description="NeuroBench's own Benchmark on to_torch(net) next to "
                                   "neurochip.budget's figures for the same test images.")
    p.add_argument("--preset", default="digits")
    p.add_argument("--checkpoint", help="a saved network (default: the preset, untrained)")
    p.add_argument("--samples", type=int, default=100, help="test images (from the first)")
    p.add_argument("--data-dir", help="IDX folder for MNIST presets")
    p.add_argument("--batch-size", type=int, default=10)
    args = p.parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.checkpoint:
        from neurochip.checkpoint import load_checkpoint
        net, training = load_checkpoint(args.checkpoint)
        dataset = (training or {}).get("dataset")       # None: from the input shape
    else:
        pre = get_preset(args.preset)
        net = Network.create(pre.arch, pre.hyper, pre.widths, seed=0, preset=args.preset)
        dataset = pre.dataset
    x, y, dataset = load_test_images(net, dataset, args.data_dir, args.samples)
    theirs = _flat(run_neurobench(net, x, y, args.batch_size))
    mine = _flat(ours(net, x, y))
    print(f"{net.arch}  {dataset} test[0:{args.samples}]  weights {net.weights_sha256()[:16]}")
    print(f"{'metric':32s} {'NeuroBench':>18s} {'neurochip.budget':>18s}")
    for k in theirs:
        print(f"{k:32s} {theirs[k]!s:>18s} {mine.get(k)!s:>18s}")
    print(f"Footprint convention: NeuroBench adds snnTorch's {SNNTORCH_BUFFER_BYTES} B of buffers "
          f"per neuron layer ({net.arch.n_layers} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
