"""NeuroBench metrics, by NeuroBench's own rules, plus our labelled hardware variants.

The rules are those of NeuroBench v2.3.0 (``neurobench/metrics/...``, see
``/work/shared/spec/budget.md`` §1).  NeuroBench itself hooks PyTorch modules;
here the same rules are applied to the torch port of our network that the
rules presuppose, which is fixed once and for all:

* weighted modules: ``Conv2d`` per conv layer (plain ``K x K`` kernel,
  padding ``P``, *before* the 2x2 pooling, which NeuroBench never counts) and
  ``Linear`` per FC layer, in float32 (PyTorch's default storage dtype);
  the feedback path (transposed conv / ``W^T``) is a functional op in such a
  port and is **not** hooked by NeuroBench (``ConvTranspose2d`` is not in its
  list either), so its operations are *not* in ``SynapticOperations``;
* activation modules: the ``L`` neuron layers (spiking outputs ``q``); the
  input encoder plays the part of NeuroBench's pre-processor and is excluded;
* one inference = the free phase, ``T1`` module calls per sample; the input of
  call ``k`` is the spike vector emitted at step ``k-1`` (``q(0) = 0``),
  exactly the spikes the core delivers in the free phase;
* "membrane" = the neuron's ``(s, dec)`` pair (what the core's *active update*
  tests); NeuroBench counts every neuron at the first step and afterwards the
  (neuron, step) pairs whose membrane changed.

Everything else our hardware does differently is reported beside these under
``neurochip_variants`` (labelled, never mixed into the NeuroBench keys).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..core import CoreLayout, CoreNet
from ..kinds import K_ACTIVE, K_EVENTS_FB, K_EVENTS_FWD, K_SPIKES, K_UPDATES
from ..network import Network
from . import counts as cnt

FLOAT32_BYTES = 4

PORT_RULES = (
    "weighted modules: one Conv2d per conv layer (plain K x K kernel, padding P, before the 2x2 "
    "pooling, which NeuroBench never counts) and one Linear per FC layer, stored in float32",
    "the feedback path (transposed conv, W^T) is a functional op in such a port and is not hooked "
    "by NeuroBench (ConvTranspose2d is not in its list either): its operations are not in "
    "SynapticOperations",
    "activation modules: the L neuron layers (binary spikes q); the input encoder is the "
    "pre-processor and is excluded",
    "one inference = the free phase: T1 module calls per sample; call k sees the spikes emitted at "
    "step k-1 (q(0) = 0), exactly the spikes the core delivers in the free phase",
    "binary inputs: every call is 'spiking', so all effective operations are ACs; bias is no operation",
    "membrane = the neuron's (s, dec) pair: every neuron counts at the first step, then the "
    "(neuron, step) pairs whose membrane changed",
)

NOT_COMPUTED = {
    "NeuronOperations": "not applicable: NeuroBench prices neuron ops only for snnTorch "
                        "Leaky/Synaptic/Lapicque/Alpha; our predictive sigma-delta EP neuron has no "
                        "entry (MembraneUpdates is given instead)",
    "ClassificationAccuracy": "task metric: reported by the training/evaluation run, not here",
}


# ---------------------------------------------------------------- static
def footprint(net: Network, element_size: int = FLOAT32_BYTES) -> int:
    """``Footprint``: sum of parameter (and buffer) ``numel * element_size``.

    NeuroBench uses the storage dtype, so a torch port in float32 counts 4 B
    per weight and bias whatever its integer values (zeros included).  The
    port holds no buffers (state lives in the simulation, not in modules).
    """
    p = cnt.parameter_totals(net)
    return (p["weights"] + p["biases"]) * element_size


def parameter_count(net: Network) -> int:
    p = cnt.parameter_totals(net)
    return p["weights"] + p["biases"]


def connection_sparsity(net: Network) -> float:
    """``ConnectionSparsity``: zero weights / weights of Conv/Linear (biases excluded), 4 dp."""
    zeros = sum(int((w == 0).sum()) for w in net.weights_q)
    total = sum(int(w.size) for w in net.weights_q)
    return round(zeros / total, 4)


# ---------------------------------------------------------- synaptic ops
def conv_synops(weight: np.ndarray, padding: int, input_counts: np.ndarray,
                n_calls: int) -> tuple[int, int]:
    """NeuroBench's ``(effective, dense)`` operations of one ``Conv2d`` (stride 1).

    ``weight (Co, Ci, K, K)``; ``input_counts (Ci, H, W)``: for each input
    element, in how many calls it was nonzero (binary inputs summed over the
    calls: the binarised conv is linear, so summing first is exact).
    Effective = sum over outputs of (nonzero input x nonzero weight) pairs in
    the receptive field; Dense = per call, all-ones input and weights through
    the *same* zero padding (border outputs count fewer taps), times the calls.
    """
    co, ci, k, _ = weight.shape
    _, h, w = input_counts.shape
    hc, wc = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    nz_out = (weight != 0).sum(axis=0).astype(np.int64)            # (Ci, K, K)
    pad = np.pad(np.asarray(input_counts, np.int64), ((0, 0), (padding, padding),
                                                      (padding, padding)))
    eff = 0
    dense_taps = 0
    for u in range(k):
        rows_in = int(((np.arange(hc) + u - padding >= 0) & (np.arange(hc) + u - padding < h)).sum())
        for v in range(k):
            win = pad[:, u:u + hc, v:v + wc].sum(axis=(1, 2))      # (Ci,)
            eff += int((nz_out[:, u, v] * win).sum())
            cols_in = int(((np.arange(wc) + v - padding >= 0) &
                           (np.arange(wc) + v - padding < w)).sum())
            dense_taps += rows_in * cols_in
    dense = n_calls * co * ci * dense_taps
    return eff, dense


def linear_synops(weight: np.ndarray, input_counts: np.ndarray, n_calls: int) -> tuple[int, int]:
    """NeuroBench's ``(effective, dense)`` operations of one ``Linear`` (``weight (out, in)``)."""
    nz = (weight != 0).sum(axis=0).astype(np.int64)                # per input feature
    eff = int((nz * np.asarray(input_counts, np.int64).reshape(-1)).sum())
    return eff, n_calls * int(weight.shape[0] * weight.shape[1])


def synaptic_operations(net: Network, free_delivered: list[np.ndarray], n_calls: int,
                        samples: int = 1) -> dict:
    """``SynapticOperations`` per sample: ``{'Effective_MACs', 'Effective_ACs', 'Dense'}``.

    ``free_delivered[l]``: canonical per-neuron counts of layer ``l``'s spikes
    fed to module ``l+1`` over the inference (summed over ``samples``).  Every
    input is a binary spike vector, so NeuroBench labels every call spiking
    and all effective operations are ACs; bias is not an operation.
    """
    arch = net.arch
    shapes = [arch.input_shape] + arch.state_shapes()
    eff = dense = 0
    for l, spec in enumerate(arch.layers, start=1):
        w = net.weights_q[l - 1]
        inp = np.asarray(free_delivered[l - 1], np.int64)
        if spec.kind == "conv":
            e, d = conv_synops(w, spec.padding, inp.reshape(shapes[l - 1]), n_calls)
        else:
            e, d = linear_synops(w, inp, n_calls)
        eff += e
        dense += d            # per sample already: n_calls calls of one sample
    return {"Effective_MACs": 0.0, "Effective_ACs": eff / samples, "Dense": float(dense)}


# ------------------------------------------------------------ workloads
def first_step_changes(net: Network) -> int:
    """Neurons of layers 1..L whose ``(s, dec)`` changes at step 1 of a sample.

    At step 1 nothing has been delivered yet (every edge delays one step), so
    this depends on the biases only; the core itself computes it (a 1-step
    free phase on a blank input).
    """
    one = dataclasses.replace(net, hyper=dataclasses.replace(net.hyper, t1=1))
    res = CoreNet(one).run(np.zeros((1, net.arch.layer_sizes()[0]), np.int64), train=False)
    return int(res.counts[0, 0, 1:, K_ACTIVE].sum())


def workload_metrics(net: Network, free_counts: np.ndarray, samples: float,
                     first_step_changed: int | None,
                     free_delivered: list[np.ndarray] | None) -> tuple[dict, dict]:
    """(NeuroBench dict, notes) for an inference workload.

    ``free_counts``: the core's free-phase counts ``(L+1, N_COUNTS)`` summed over
    ``samples`` inferences.  ``free_delivered``: canonical per-neuron delivered
    spike counts (from a raster) or None, in which case ``SynapticOperations``
    is left out with the reason, never set to 0.
    """
    sizes = net.arch.layer_sizes()
    t1 = net.hyper.t1
    notes = {}
    out = {}
    n_hidden = sum(sizes[1:])
    spikes = int(free_counts[1:, K_SPIKES].sum())
    total = n_hidden * t1 * samples
    out["ActivationSparsity"] = (total - spikes) / total
    if first_step_changed is not None:
        active = float(free_counts[1:, K_ACTIVE].sum())
        out["MembraneUpdates"] = (active + samples * (n_hidden - first_step_changed)) / samples
    else:
        notes["MembraneUpdates"] = "not computed: the first-step change count is missing"
    if free_delivered is not None:
        out["SynapticOperations"] = synaptic_operations(net, free_delivered, t1,
                                                        samples=int(round(samples)))
    else:
        notes["SynapticOperations"] = ("not computed: NeuroBench's effective ops need per-neuron "
                                       "spike counts (pass a recorded raster)")
    return out, notes


def static_metrics(net: Network) -> dict:
    return {"Footprint": footprint(net), "ParameterCount": parameter_count(net),
            "ConnectionSparsity": connection_sparsity(net)}


def hardware_variants(net: Network, free_counts: np.ndarray, samples: float,
                      train_counts: np.ndarray | None, train_samples: float) -> dict:
    """Our hardware-faithful variants: *not* NeuroBench metrics, labelled so.

    * ``Footprint_hw_bytes``: weights at ``Bw`` bits + biases at ``Bb`` bits
      (NeuroBench counts 4 B per float32 parameter);
    * ``SynapticEvents_core_per_inference``: the core's count (fused avg-pool
      kernel targets incl. borders, **and** the feedback path), numerics §4;
    * ``SynapticEvents_core_per_training_sample``: the same over all 3 phases;
    * ``ActivationSparsity_incl_input``: input encoder included;
    * ``MembraneUpdates_core``: active updates only (no all-neurons first step);
    * graded payloads: none (binary spikes), so no magnitude classes.
    """
    p = cnt.parameter_totals(net)
    sizes = net.arch.layer_sizes()
    t1 = net.hyper.t1
    ev = free_counts[:, K_EVENTS_FWD].sum() + free_counts[:, K_EVENTS_FB].sum()
    out = {
        "Footprint_hw_bytes": p["weight_bytes_hw"] + p["bias_bytes_hw"],
        "SynapticEvents_core_per_inference": float(ev) / samples,
        "SynapticEvents_core_fwd_per_inference": float(free_counts[:, K_EVENTS_FWD].sum()) / samples,
        "ActivationSparsity_incl_input": 1.0 - float(free_counts[:, K_SPIKES].sum())
        / (sum(sizes) * t1 * samples),
        "MembraneUpdates_core": float(free_counts[1:, K_ACTIVE].sum()) / samples,
        "NeuronUpdates_core_dense": float(free_counts[1:, K_UPDATES].sum()) / samples,
        "spike_payload": "binary (1 bit); no graded payloads, so no magnitude classes",
    }
    if train_counts is not None and train_samples:
        tev = train_counts[..., K_EVENTS_FWD].sum() + train_counts[..., K_EVENTS_FB].sum()
        out["SynapticEvents_core_per_training_sample"] = float(tev) / train_samples
    return out


RESULT_KEYS = ("Footprint", "ConnectionSparsity", "ClassificationAccuracy", "ActivationSparsity",
               "MembraneUpdates", "SynapticOperations")


def results_dict(metrics: dict, predictions=None, labels=None) -> dict:
    """The metrics as NeuroBench's ``Benchmark.run()`` returns them, with the accuracy.

    One level of NeuroBench's own keys (``SynapticOperations`` keeps its
    ``Effective_MACs``/``Effective_ACs``/``Dense`` dict, as NeuroBench's does);
    ``ClassificationAccuracy`` is the fraction of ``predictions == labels``
    (the free phase's argmax) when both are given.  Metrics not computed are absent.
    """
    out = {}
    for key in RESULT_KEYS:
        if key == "ClassificationAccuracy":
            if predictions is not None and labels is not None and len(labels):
                p, y = np.asarray(predictions).reshape(-1), np.asarray(labels).reshape(-1)
                out[key] = float((p == y).mean())
        elif key in metrics:
            out[key] = metrics[key]
    return out


def split_canonical(net: Network, flat_internal: np.ndarray) -> list[np.ndarray]:
    """Per-layer canonical arrays from a flat internal-order vector."""
    return CoreLayout.build(net).split(np.asarray(flat_internal), canonical=True)
