"""Measured BPTT memory: values autograd saves per neuron and step (``budget --measure-bptt-k``).

Registered as the measurement ``bptt_k`` (group ``neurochip.measurements``), so
:mod:`neurochip.budget` can use it without importing this package.
"""
from __future__ import annotations

import numpy as np
import torch

from neurochip.network import Network

from .bptt import bptt_gradients
from .real import RealModel


def measure_bptt_k(net: Network, batch: int = 2, steps: tuple[int, int] = (4, 8)) -> dict:
    """Measure ``k`` on the project's own BPTT baseline (``reference.bptt``, float32).

    Every tensor autograd saves is seen through ``saved_tensors_hooks``; distinct
    storages are summed for two unroll lengths and the difference divided by the
    extra steps, the batch and the hidden neurons (weights and inputs, saved once,
    cancel).  Result: float32-equivalent values (bytes / 4) saved per hidden
    neuron per step.
    """
    model = RealModel.from_network(net, spiking=True, dtype=torch.float32)
    rng = np.random.default_rng(0)
    x = model.inputs(rng.random((batch, net.arch.layer_sizes()[0])))
    labels = np.arange(batch) % net.arch.num_classes
    total = {}
    for n in steps:
        seen = {}

        def pack(t, seen=seen):
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            bptt_gradients(model, x, labels, steps=n)
        total[n] = sum(seen.values())
    n_hidden = sum(net.arch.layer_sizes()[1:])
    per_step = (total[steps[1]] - total[steps[0]]) / (steps[1] - steps[0])
    return {"k": per_step / (batch * n_hidden * 4), "bytes_per_step": per_step, "batch": batch,
            "method": "torch.autograd.graph.saved_tensors_hooks on reference.bptt.bptt_gradients "
                      f"(float32, straight-through spikes), distinct storages, steps {steps}"}
