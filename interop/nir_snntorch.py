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

from neurochip.errors import ArgumentParser, UserError, command


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


@command
def main(argv=None) -> int:
    """``python -m interop.nir_snntorch NET.nir``: snnTorch's accuracy next to the core's."""
    from neurochip.compare import prediction_lines
    from neurochip.core import CoreNet
    from neurochip.data import add_test_image_flags, load_test_images
    from reference.torch_port import input_spike_train
    from .nir_export import load_network_from_nir
    p = ArgumentParser(prog="python -m interop.nir_snntorch",
                       description="Read a NIR export into snnTorch and compare its class "
                                   "predictions on test images with the integer core's.")
    p.add_argument("path", help="NIR file written by --export-nir")
    add_test_image_flags(p)
    p.add_argument("--batch", type=int, default=500, help="images per snnTorch batch")
    args = p.parse_args(argv)
    if args.batch < 1:
        raise UserError(f"--batch must be a positive integer, got {args.batch}")
    net = load_network_from_nir(args.path)
    graph, module = import_snntorch(args.path)
    x, y, dataset = load_test_images(net, args.dataset, args.data_dir, args.samples)
    core_pred = CoreNet(net).run(x, train=False).predictions
    counts = np.concatenate([
        run_snntorch(module, input_spike_train(net, x[i:i + args.batch], net.hyper.t1 + 1)[:, 1:])
        for i in range(0, len(y), args.batch)])
    print(f"{net.arch}  {dataset} test[0:{len(y)}]  weights {net.weights_sha256()[:16]}  "
          f"{len(graph.nodes)} NIR nodes, {len(graph.edges)} edges "
          f"({sum(1 for a, _ in graph.edges if a.startswith('fb'))} feedback)")
    print("\n".join(prediction_lines("snnTorch from NIR (LIF approximation)", counts,
                                      core_pred, y)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
