"""EP vs BPTT training memory, counted fairly (``/work/shared/spec/budget.md`` §5).

Both sides are counted at the **same precision**, twice: at our hardware bit
widths (``docs/numerics.md`` §2) and at the framework default float32.  Peak
resident bytes, not bytes ever written.  Every assumption is returned beside
the numbers (``assumptions``) and printed by the report.

EP (what neurochip does, numerics §5-6), for a minibatch of ``B`` samples
simulated concurrently:

* live state per neuron: ``s, dec, psi, enc_prev`` and the spike in flight
  (the input encoder: ``x, psi, enc_prev``, spike);
* one snapshot of all of it (``n_snap = 1``: the free state, restored for the
  -beta phase; the +beta end state is latched into traces, not kept);
* two ``Bt``-bit trace registers per neuron (incl. the input), held for all
  ``B`` samples until the minibatch update;
* the per-step input accumulators (``u_fwd``, ``u_fb``; 24 bit);
* weights (``Bw``) and biases (``Bb``), plus the contrastive sums ``G``, one
  accumulator per parameter, as wide as its asserted bound needs.

Independent of ``T1`` and ``T2``.

BPTT (the same spiking network unrolled with autograd; surrogate gradient):
``B * T * sum_l k_l N_l`` stored values, ``k`` tensors saved per neuron per
step (default 3: input spikes, state, surrogate mask/pre-threshold value;
budget.md suggests k = 2-4, not measured here), ``T`` steps of the unrolled
forward (default ``T1``: BPTT needs no nudged phases), plus weights and a
gradient buffer of the same width as the weights.  Also given: BPTT with
gradient checkpointing every ``S = ceil(sqrt(T))`` steps (state snapshots at
segment starts + one segment re-run with its graph).
"""
from __future__ import annotations

import math

from ..bounds import contrastive_positions, contrastive_sum_bound
from ..network import Network
from ..numerics import REG_BITS
from . import counts as cnt

FP32 = 32


def _bytes(bits: int) -> int:
    return -(-int(bits) // 8)


def _g_bits(net: Network) -> list[int]:
    """Width of the contrastive-sum accumulator per layer, from its bound (learning.py)."""
    arch = net.arch
    tmax = (1 << net.widths.trace_bits) - 1
    b = net.hyper.batch_size
    out = []
    for l in range(arch.n_layers):
        bound = contrastive_sum_bound(b, contrastive_positions(arch, l), tmax)
        out.append(int(math.ceil(math.log2(bound + 1))) + 1)   # signed
    return out


def training_memory(net: Network, batch: int | None = None, t_bptt: int | None = None,
                    k_bptt: float = 3, k_source: str = "assumed") -> dict:
    """Peak training memory of EP and of BPTT, at hardware widths and in float32.

    Returns ``ep_bytes``/``bptt_bytes`` (hardware widths, the headline),
    ``*_fp32`` variants, the BPTT-checkpointed variant, a breakdown per class and
    ``assumptions`` (a list of strings, one per assumption).
    """
    b = int(batch or net.hyper.batch_size)
    t = int(t_bptt or net.hyper.t1)
    wd = net.widths
    sizes = net.arch.layer_sizes()
    n_all = sum(sizes)
    n_hidden = sum(sizes[1:])
    sb = wd.state_bits + 1
    p = cnt.parameter_totals(net)
    weights_hw = p["weights"] * wd.weight_bits + p["biases"] * wd.bias_bits
    weights_f32 = (p["weights"] + p["biases"]) * FP32
    shapes = net.arch.weight_shapes()
    g_bits = _g_bits(net)
    g_hw = sum(int(math.prod(s)) * gb for s, gb in zip(shapes, g_bits)) + \
        sum(spec.channels * gb for spec, gb in zip(net.arch.layers, g_bits))

    # EP, hardware widths ---------------------------------------------------------
    live_bits = 0
    snap_bits = 0
    acc_bits = 0
    trace_bits = 0
    for l in range(len(sizes)):
        bits = cnt.neuron_state_bits(net, l)
        live = sum(v for k, v in bits.items() if k not in ("snapshot", "traces", "bias",
                                                            "acc_fwd", "acc_fb"))
        live_bits += sizes[l] * live
        snap_bits += sizes[l] * bits["snapshot"]
        acc_bits += sizes[l] * (bits.get("acc_fwd", 0) + bits.get("acc_fb", 0))
        trace_bits += sizes[l] * bits["traces"]
    ep_hw = {
        "live_state": _bytes(b * live_bits),
        "snapshot": _bytes(b * snap_bits),
        "input_accumulators": _bytes(b * acc_bits),
        "traces": _bytes(b * trace_bits),
        "weights_biases": _bytes(weights_hw),
        "contrastive_sums": _bytes(g_hw),
    }
    # EP, float32: every state variable a float32 tensor ------------------------
    n_vars_hidden, n_vars_input = 5, 4          # s, dec, psi, enc_prev, spike | x, psi, enc_prev, spike
    live_f32 = (n_hidden * n_vars_hidden + sizes[0] * n_vars_input) * FP32
    ep_f32 = {
        "live_state": _bytes(b * live_f32),
        "snapshot": _bytes(b * live_f32),
        "input_accumulators": _bytes(b * 2 * n_hidden * FP32),
        "traces": _bytes(b * 2 * n_all * FP32),
        "weights_biases": _bytes(weights_f32),
        "contrastive_sums": _bytes(weights_f32),
    }

    # BPTT ------------------------------------------------------------------------
    # per neuron per step: k tensors; at hardware widths: input spike (1 b), state (S+1 b),
    # then 24-bit registers (decoder / pre-threshold value) for k > 2
    # (k may be fractional when measured: the part beyond 2 is at register width)
    hw_k_bits = (min(k_bptt, 1.0) * 1 + min(max(k_bptt - 1, 0.0), 1.0) * sb
                 + max(k_bptt - 2, 0.0) * REG_BITS)
    graph_hw = math.ceil(b * t * n_hidden * hw_k_bits) + b * t * sizes[0] * 1  # + input spikes
    graph_f32 = math.ceil(b * t * n_hidden * k_bptt * FP32) + b * t * sizes[0] * FP32
    bptt_hw = {"graph": _bytes(graph_hw), "weights_biases": _bytes(weights_hw),
               "gradients": _bytes(weights_hw)}
    bptt_f32 = {"graph": _bytes(graph_f32), "weights_biases": _bytes(weights_f32),
               "gradients": _bytes(weights_f32)}
    seg = max(1, math.ceil(math.sqrt(t)))
    seg_len = math.ceil(t / seg)
    ckpt_f32 = {"checkpoints": _bytes(b * seg * live_f32),
               "segment_graph": _bytes(math.ceil(b * seg_len * (n_hidden * k_bptt + sizes[0]) * FP32)),
               "weights_biases": _bytes(weights_f32), "gradients": _bytes(weights_f32)}

    tot = lambda d: int(sum(d.values()))
    assumptions = [
        f"batch B = {b} samples simulated concurrently, same B for EP and BPTT",
        f"EP: T1 = {net.hyper.t1}, T2 = {net.hyper.t2} (memory independent of both)",
        "EP: live state per neuron s, dec, psi, enc_prev, spike (input: x, psi, enc_prev, spike)",
        "EP: n_snap = 1 snapshot (free state, restored for -beta; the +beta end state goes to traces)",
        f"EP: 2 traces x {wd.trace_bits} bits per neuron incl. input, kept for all B until the update",
        "EP: contrastive sums G, one accumulator per parameter, width from the asserted bound "
        f"({', '.join(str(g) for g in g_bits)} bits per layer)",
        f"BPTT: T = {t} unrolled steps ({'T1' if t == net.hyper.t1 else 'given'}), "
        f"k = {k_bptt:.3g} values saved per hidden neuron per step ({k_source})",
        "BPTT hardware widths: of the k values, one spike (1 b), one state (S+1 b), the rest "
        f"24-bit registers = {hw_k_bits:.4g} bits per neuron per step; + the input spike train",
        "BPTT: gradient buffer as wide as the weights; optimiser SGD without state (both sides)",
        f"BPTT checkpointed (fp32): S = ceil(sqrt(T)) = {seg} state snapshots + one {seg_len}-step "
        "segment graph, costs one extra forward pass",
        "float32: every tensor 4 B (the framework default); hardware: numerics.md widths",
        "not counted on either side: the dataset, code, framework/CUDA context, allocator slack",
    ]
    return {
        "ep_bytes": tot(ep_hw), "bptt_bytes": tot(bptt_hw),
        "ep_bytes_fp32": tot(ep_f32), "bptt_bytes_fp32": tot(bptt_f32),
        "bptt_checkpointed_bytes_fp32": tot(ckpt_f32),
        "ratio_bptt_over_ep": tot(bptt_hw) / tot(ep_hw),
        "ratio_bptt_over_ep_fp32": tot(bptt_f32) / tot(ep_f32),
        "activation_ratio_fp32": bptt_f32["graph"] / (ep_f32["live_state"] + ep_f32["snapshot"]
                                                      + ep_f32["input_accumulators"]
                                                      + ep_f32["traces"]),
        "breakdown": {"ep": ep_hw, "bptt": bptt_hw, "ep_fp32": ep_f32, "bptt_fp32": bptt_f32,
                      "bptt_checkpointed_fp32": ckpt_f32},
        "batch": b, "t_bptt": t, "k_bptt": k_bptt, "k_source": k_source,
        "t1": net.hyper.t1, "t2": net.hyper.t2,
        "assumptions": assumptions,
    }


def training_compute(net: Network, dense_fwd_per_step: int, t_bptt: int | None = None) -> dict:
    """The compute price beside the memory win (budget.md §5 rule 4), NeuroBench ``Dense`` style.

    ``dense_fwd_per_step``: NeuroBench ``Dense`` operations of the forward
    modules for one call (all-ones input and weights).  EP runs ``T1 + 2*T2``
    steps, each with the forward path and the feedback path (the transposes of
    layers 2..L: a linear map and its transpose have the same nonzero pairs).
    BPTT runs ``T`` forward steps and a backward pass costed at 2x the forward
    (input and weight gradients), an assumption.
    """
    t = int(t_bptt or net.hyper.t1)
    from .neurobench import conv_synops, linear_synops
    import numpy as np
    fb = 0
    shapes = [net.arch.input_shape] + net.arch.state_shapes()
    for l, spec in enumerate(net.arch.layers, start=1):
        if l < 2:
            continue
        w = net.weights_q[l - 1]
        if spec.kind == "conv":
            fb += conv_synops(np.ones_like(w), spec.padding, np.zeros(shapes[l - 1], np.int64), 1)[1]
        else:
            fb += linear_synops(w, np.zeros(w.shape[1], np.int64), 1)[1]
    steps_ep = net.hyper.t1 + 2 * net.hyper.t2
    return {
        "ep_dense_ops_per_training_sample": steps_ep * (dense_fwd_per_step + fb),
        "bptt_dense_ops_per_training_sample": 3 * t * dense_fwd_per_step,
        "assumptions": [f"EP: {steps_ep} steps x (forward {dense_fwd_per_step} + feedback {fb}) "
                        "dense ops per step",
                        f"BPTT: {t} forward steps x {dense_fwd_per_step}, backward = 2 x forward "
                        "(assumed), no feedback path",
                        "Dense = NeuroBench's all-ones count; effective (event-driven) ops of EP are "
                        "the core's synaptic events, given under per_sample"],
    }
