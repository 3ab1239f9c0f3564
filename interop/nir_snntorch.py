"""Run an exported NIR file in snnTorch (through its own NIR import) next to the core.

``snntorch.import_nir.import_from_nir(nir.read(path))`` builds a torch module
(nirtorch executes the graph, feedback cycles included: a node's output of the
previous step is fed back through the state dict).  snnTorch maps each ``LIF``
to ``snn.Leaky`` (``beta = 1 - dt/tau = 1 - epsilon``, reset to zero, the
threshold divided by ``r dt / tau``), ``AvgPool2d`` and ``Conv2d`` to torch's.
The input is the EP input encoder's spike train (``T1`` steps); the prediction
is the output neuron with the most spikes (first maximum).  This is an
approximation of the EP network (neuron models differ; see
:mod:`interop.nir_export`), measured against the exact core on the same images.

Command::

    python -m interop.nir_snntorch NET.nir [--samples N] [--data-dir DIR]
"""
from __future__ import annotations

import sys

import numpy as np

from neurochip.errors import UserError


def import_snntorch(path: str):
    """``(graph, module)``: the NIR file read by ``nir`` and imported by snnTorch."""
    try:
        import nir
        from snntorch.import_nir import import_from_nir
    except ImportError as exc:
        raise UserError(f"running a NIR file in snnTorch needs nir, nirtorch and snntorch ({exc})") \
            from None
    graph = nir.read(path)
    graph.nodes = forward_order(graph)
    return graph, import_from_nir(graph)


def forward_order(graph) -> dict:
    """The graph's nodes in forward topological order, the feedback nodes (``fb*``) last.

    ``nir.read`` returns the nodes in HDF5 (alphabetical) order, and nirtorch
    breaks each cycle at the first edge it meets whose source it has not run
    yet, feeding that source's output of the previous step.  In forward order
    the only such edges are the feedback edges: they get the one-step delay
    they have in the EP network, and no forward edge is delayed.
    """
    forward = [(a, b) for a, b in graph.edges if not a.startswith("fb")]
    indeg = {n: 0 for n in graph.nodes}
    for _, b in forward:
        indeg[b] += 1
    ready = [n for n in graph.nodes if indeg[n] == 0 and not n.startswith("fb")]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for a, b in forward:
            if a == n:
                indeg[b] -= 1
                if indeg[b] == 0 and not b.startswith("fb"):
                    ready.append(b)
    order += [n for n in graph.nodes if n not in order]
    return {n: graph.nodes[n] for n in order}


def run_snntorch(module, spikes) -> np.ndarray:
    """Output spike counts ``(N, classes)`` of ``module`` on input spikes ``(N, T, C, H, W)``."""
    import torch
    from snntorch import utils
    x = torch.as_tensor(np.asarray(spikes, np.float32))
    utils.reset(module)
    state = None
    counts = None
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state = module(x[:, t], state)
            # snnTorch hands NIR's batch-free Flatten(start_dim=0) to torch.nn.Flatten as is,
            # which also flattens the batch: the order is kept, so reshape it back
            out = out.reshape(x.shape[0], -1)
            counts = out if counts is None else counts + out
    return counts.numpy().astype(np.int64)


def main(argv=None) -> int:
    from neurochip.core import CoreNet
    from neurochip.errors import ArgumentParser
    p = ArgumentParser(prog="python -m interop.nir_snntorch",
                       description="Read a NIR export into snnTorch and compare its class "
                                   "predictions on test images with the integer core's.")
    p.add_argument("path", help="NIR file written by --export-nir")
    p.add_argument("--dataset", help="digits | mnist | fashion-mnist (default: from the input shape)")
    p.add_argument("--data-dir", help="folder with the IDX .gz files")
    p.add_argument("--samples", type=int, default=None, help="test images, from the first (default all)")
    p.add_argument("--batch", type=int, default=500, help="images per snnTorch batch")
    try:
        args = p.parse_args(argv)
        from neurochip.data import load_dataset
        from .nir_export import load_network_from_nir
        from reference.torch_port import input_spike_train
        net = load_network_from_nir(args.path)
        graph, module = import_snntorch(args.path)
        dataset = args.dataset or ("digits" if tuple(net.arch.input_shape[1:]) == (8, 8)
                                   else "mnist")
        d = load_dataset(dataset, args.data_dir)
        n = len(d.test_y) if args.samples is None else args.samples
        if not 1 <= n <= len(d.test_y) or args.batch < 1:
            raise UserError(f"--samples must be in 1..{len(d.test_y)} and --batch positive")
        x = d.quantised(d.test_x[:n], net.widths.state_bits)
        y = np.asarray(d.test_y[:n], np.int64)
        core_pred = CoreNet(net).run(x, train=False).predictions
        counts = []
        for i in range(0, n, args.batch):
            train = input_spike_train(net, x[i:i + args.batch], net.hyper.t1 + 1)[:, 1:]
            counts.append(run_snntorch(module, train))
        counts = np.concatenate(counts)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pred = np.argmax(counts, axis=1)
    silent = int((counts.sum(axis=1) == 0).sum())
    print(f"{net.arch}  {dataset} test[0:{n}]  weights {net.weights_sha256()[:16]}  "
          f"{len(graph.nodes)} NIR nodes, {len(graph.edges)} edges "
          f"({sum(1 for a, _ in graph.edges if a.startswith('fb'))} feedback)")
    print(f"  core (exact EP network, free phase):   test error {100 * (core_pred != y).mean():.2f} %")
    print(f"  snnTorch from NIR (LIF approximation): test error {100 * (pred != y).mean():.2f} % "
          f"(argmax of output spike counts; {silent} images without an output spike)")
    print(f"  same prediction: {100 * (pred == core_pred).mean():.2f} % of the images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
