"""Data-parallel EP training over ``torch.distributed``, bit-identical to one process.

Launch (gloo on CPU, NCCL on GPU)::

    torchrun --standalone --nproc_per_node 2 -m reference.distributed \\
        --preset digits --bits 8 --pool avg --samples 20 --updates 3 [--device cuda] [--out run.json]

Without ``torchrun`` it runs as a single process.  Every process builds the
same network (preset, bits, pool, seed; batch size = ``--samples``) and walks
the same minibatches (the training order of ``neurochip.run``).  Each
minibatch is split into contiguous, nearly equal parts, one per process; each
process simulates its part with the exact mirror and forms its integer
contrastive sums ``G, Gb`` (int64).  These are summed with ``all_reduce(SUM)``
*before* the stochastic rounding; integer addition is associative and the
random bits are counter based (seed, update, layer, index), so every process
applies the identical update, and the weights equal those of a one-process run
(and of the Numba core) bit for bit.  At the end the processes compare their
``weights_sha256``; rank 0 prints it (last line ``weights_sha256 <hex>``) and
writes ``--out`` (JSON).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from neurochip.atomic import atomic_write_text
from neurochip.errors import UserError


def build_parser():
    from .common import Parser, add_network_args
    p = Parser(prog="torchrun --nproc_per_node N -m reference.distributed",
               description="Data-parallel integer EP training with all-reduced contrastive sums.")
    add_network_args(p)
    p.add_argument("--out", default=None, help="write the result as JSON (rank 0)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per process (default 1)")
    return p


def _zero_grads(mirror) -> list:
    import torch
    return [(torch.zeros(w.shape, dtype=torch.int64, device=mirror.device),
             torch.zeros(b.shape, dtype=torch.int64, device=mirror.device))
            for w, b in zip(mirror.weights, mirror.biases)]


def train(args, rank: int = 0, world: int = 1, log=print) -> dict:
    """Run the data-parallel training in this process; returns the result dict."""
    import torch
    import torch.distributed as dist

    from neurochip.kinds import N_COUNTS

    from .common import build_network, load_train, minibatches
    from .mirror import Mirror

    net = build_network(args)
    x_all, y_all = load_train(args, net)
    batches = minibatches(net.seed, len(y_all), args.samples, args.updates)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    mirror = Mirror(net, dev)
    n_l1 = net.arch.n_layers + 1
    history = []
    for u, idx in enumerate(batches):
        part = np.array_split(idx, world)[rank]
        counts = torch.zeros((3, n_l1, N_COUNTS), dtype=torch.int64, device=mirror.device)
        if len(part):
            res = mirror.run(x_all[part], y_all[part], train=True)
            grads = mirror.contrastive(res.layer_traces())
            counts += res.counts.sum(0)
        else:
            grads = _zero_grads(mirror)
        if world > 1:
            for g, gb in grads:
                dist.all_reduce(g, op=dist.ReduceOp.SUM)
                dist.all_reduce(gb, op=dist.ReduceOp.SUM)
            dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        stats = mirror.update(grads, batch=len(idx))
        spikes = int(counts[..., 0].sum())
        history.append({"update": u + 1, "samples": int(len(idx)), "local_samples": int(len(part)),
                        "spikes": spikes, "weight_writes": [int(v) for v in stats.weight_writes]})
        if rank == 0:
            log(f"update {u + 1}: {len(idx)} samples over {world} process(es), {spikes} spikes, "
                f"weight writes {[int(v) for v in stats.weight_writes]}")
    sha = mirror.weights_sha256()
    if world > 1:
        shas = [None] * world
        dist.all_gather_object(shas, sha)
        if len(set(shas)) != 1:
            raise RuntimeError(f"processes disagree on the weights: {shas}")
    return {"preset": args.preset, "arch": str(net.arch), "bits": net.widths.weight_bits,
            "pool": net.hyper.pool, "seed": net.seed, "samples": args.samples,
            "updates": mirror.updates, "world_size": world, "device": str(args.device),
            "history": history, "weights_sha256": sha}


def main(argv=None) -> int:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    try:
        args = build_parser().parse_args(argv)
        import torch
        import torch.distributed as dist

        from .mirror import resolve_device
        dev = resolve_device(args.device)
        if args.threads < 1:
            raise UserError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
        if world > 1:
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        try:
            result = train(args, rank, world)
        finally:
            if world > 1 and dist.is_initialized():
                dist.destroy_process_group()
        if rank == 0:
            if args.out:
                atomic_write_text(args.out, json.dumps(result, indent=1))
            print(f"weights_sha256 {result['weights_sha256']}")
        return 0
    except UserError as exc:
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
