"""``to_torch(net)``: the free phase as a stepwise torch module that NeuroBench can hook.

NeuroBench measures a network by hooking its PyTorch modules: ``Conv2d`` and
``Linear`` ("connection layers": synaptic operations, connection sparsity) and
snnTorch ``SpikingNeuron`` modules ("activation layers": activation sparsity,
membrane updates), and by reading ``parameters()``/``buffers()`` (footprint).
:class:`TorchEPNet` is our network written that way, one module call per time
step, and it reproduces the integer core's free-phase spikes **exactly**
(``tests/reference/test_torch_port.py`` compares every spike):

* per layer an ``nn.Conv2d`` (the plain ``K x K`` kernel ``w``, padding ``P``,
  stride 1, no bias) followed by a 2x2 **sum**-pool (floor mode; not a
  NeuroBench connection layer), or an ``nn.Linear`` (``W``, no bias); weights
  hold the integers ``w`` as float32 (float64 where a sum could reach 2**24),
  so every synaptic sum is exact;
* one-step delays: call ``k`` feeds layer ``l``'s synapse with the spikes
  layer ``l-1`` emitted at call ``k-1`` (the input's at ``k-1`` come as this
  call's input); the feedback ``W^T`` of layer ``l+1``'s spikes of call
  ``k-1`` is a functional op (``conv_transpose2d`` / ``matmul``), which
  NeuroBench does not hook, as in :mod:`neurochip.budget.neurobench`;
* :class:`EPNeuronLayer` (an snnTorch ``SpikingNeuron``) runs the EP neuron
  rules of docs/numerics.md §5 on int64 state, calling the update sequence of
  :mod:`neurochip.neuron` (no rule or step rewritten); its ``bias`` is a float32
  parameter holding the integer biases; its ``mem`` is the ``(s, dec)`` pair
  packed into one int64 per neuron (``s * 2**24 + dec + 2**23``), so
  NeuroBench's ``MembraneUpdates`` counts a neuron when ``s`` or ``dec``
  changed, the budget's definition.

The input layer's encoder is NeuroBench's pre-processor:
:func:`input_spike_train` gives the spikes a sample delivers to layer 1,
shape ``(B, T1, C, H, W)``, call ``k`` getting the input's spikes of step
``k-1`` (none at ``k = 1``).

Footprint convention: NeuroBench counts ``numel * element_size`` of every
parameter and buffer: the weights and biases at 4 bytes (float32), plus the
three buffers snnTorch registers in every ``SpikingNeuron`` (``threshold``
float32, ``graded_spikes_factor`` float32, ``reset_mechanism_val`` int64):
**16 bytes per neuron layer** more than ``neurochip.budget``'s ``Footprint``
(weights and biases only).  The EP state is no buffer (it lives in the
simulation, not in the model).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from neurochip import neuron
from neurochip.errors import UserError
from neurochip.network import Network
from neurochip.neuron import EncoderState, NeuronState

from neurochip.pooling import fused_kernel
steps_ = neuron.pure     # the neuron's update sequence (neurochip.neuron), on tensors

I64 = torch.int64
FLOAT32_EXACT = 2 ** 24
DEC_OFFSET = 1 << 23          # dec is a signed 24-bit register
MEM_SHIFT = 24


def _snntorch():
    try:
        import snntorch
    except ImportError as exc:
        raise UserError("to_torch() needs snnTorch (pip install snntorch)") from exc
    return snntorch


def input_spike_train(net: Network, x_fp, steps: int | None = None) -> torch.Tensor:
    """The input encoder's spikes as delivered to layer 1, float32 ``(B, steps, C, H, W)``.

    ``x_fp``: int ``(B, N0)`` quantised pixels (C, H, W order).  Entry ``k-1``
    is what call ``k`` receives: the spikes the input emitted at step ``k-1``
    (docs/numerics.md §5; none at step 0).  ``steps`` defaults to T1.
    """
    k = net.constants()
    steps = steps or net.hyper.t1
    x = torch.as_tensor(np.asarray(x_fp, np.int64)).reshape((-1,) + tuple(net.arch.input_shape))
    psi = torch.zeros_like(x)
    prev = torch.zeros_like(x)
    out = torch.zeros((x.shape[0], steps) + tuple(x.shape[1:]), dtype=torch.float32)
    dyn = neuron.dynamics(k)
    for t in range(1, steps):
        q, (psi, prev), _ = steps_.encode_step(x, EncoderState(psi, prev), dyn)
        out[:, t] = q.to(torch.float32)
    return out


def _sum_pool2(u: torch.Tensor) -> torch.Tensor:
    """2x2 sum, stride 2, floor mode (rows/columns beyond an even extent dropped)."""
    b, c, h, w = u.shape
    hp, wp = h // 2, w // 2
    return u[:, :, :2 * hp, :2 * wp].reshape(b, c, hp, 2, wp, 2).sum(dim=(3, 5))


def _make_neuron_class():
    snn = _snntorch()

    class EPNeuronLayer(snn.SpikingNeuron):
        """The EP neuron of one layer (docs/numerics.md §5, free phase) as an snnTorch neuron.

        ``forward(u_fwd, u_fb)``: the integer synaptic sums of this step
        (float tensors holding integers), returns ``(spikes float32, mem int64)``.
        """

        def __init__(self, net: Network, layer: int, shape: tuple):
            super().__init__(threshold=1.0, reset_mechanism="none")
            k = net.constants()
            lc = k.layers[layer - 1]
            self.layer, self.shape = layer, tuple(shape)
            self.align, self.dyn = neuron.alignment(lc), neuron.dynamics(k)
            b = torch.as_tensor(np.asarray(net.biases_q[layer - 1], np.float32))
            self.bias = nn.Parameter(b, requires_grad=False)
            self.reset_state()

        def reset_state(self) -> None:
            self.s = self.dec = self.psi = self.enc_prev = None
            self.mem = None

        def _zeros(self, bsz: int) -> torch.Tensor:
            return torch.zeros((bsz,) + self.shape, dtype=I64)

        def forward(self, u_fwd: torch.Tensor, u_fb: torch.Tensor):
            bsz = u_fwd.shape[0]
            if self.s is None:
                self.s, self.dec, self.psi, self.enc_prev = (self._zeros(bsz) for _ in range(4))
            bias = self.bias.detach().to(I64)
            if len(self.shape) == 3:
                bias = bias.view(-1, 1, 1)
            # the free phase (no nudge) of neurochip.neuron's one update sequence
            (s, dec), _, _ = steps_.neuron_step(u_fwd.to(I64), u_fb.to(I64), bias, 0, 0,
                                                NeuronState(self.s, self.dec), self.align, self.dyn)
            q, (self.psi, self.enc_prev), _ = steps_.encode_step(
                s, EncoderState(self.psi, self.enc_prev), self.dyn)
            self.s, self.dec = s, dec
            self.mem = (s << MEM_SHIFT) + (dec + DEC_OFFSET)     # a new tensor every call
            return q.to(torch.float32), self.mem

    return EPNeuronLayer


class TorchEPNet(nn.Module):
    """The network's free phase, one ``forward`` per time step (see the module docstring).

    ``forward(x)``: ``x`` float ``(B, C, H, W)`` (or ``(B, n)``), the input
    spikes delivered at this step; returns ``(output spikes (B, classes),
    output mem)``.  ``reset()`` starts a new sample.  After ``T1`` calls,
    :meth:`predictions` is the core's prediction (first maximum of the output
    state ``s``).
    """

    def __init__(self, net: Network):
        super().__init__()
        neuron_cls = _make_neuron_class()
        arch = net.arch
        self.shapes = [tuple(arch.input_shape)] + [tuple(s) for s in arch.state_shapes()]
        self.kinds = [spec.kind for spec in arch.layers]
        if net.hyper.pool != "avg":
            raise UserError("to_torch() ports avg-pool networks (conv then 2x2 sum-pool); "
                            "max-pool has no module NeuroBench would count the same way")
        bound = max(int(np.abs(np.asarray(w, np.int64)).sum()) * 4 for w in net.weights_q)
        dtype = torch.float32 if bound < FLOAT32_EXACT else torch.float64
        self.synapses = nn.ModuleList()
        for l, spec in enumerate(arch.layers, start=1):
            w = torch.as_tensor(np.asarray(net.weights_q[l - 1], np.int64)).to(dtype)
            if spec.kind == "conv":
                mod = nn.Conv2d(self.shapes[l - 1][0], spec.channels, spec.kernel,
                                padding=spec.padding, bias=False, dtype=dtype)
            else:
                mod = nn.Linear(int(np.prod(self.shapes[l - 1])), spec.channels, bias=False,
                                dtype=dtype)
            mod.weight = nn.Parameter(w, requires_grad=False)
            self.synapses.append(mod)
        self.neurons = nn.ModuleList(neuron_cls(net, l, self.shapes[l])
                                     for l in range(1, arch.n_layers + 1))
        self._prev = None

    def reset(self) -> None:
        """Start a new sample: zero state, no spikes in flight."""
        self._prev = None
        for n in self.neurons:
            n.reset_state()

    def _forward_sum(self, l: int, q: torch.Tensor) -> torch.Tensor:
        mod = self.synapses[l - 1]
        if self.kinds[l - 1] == "conv":
            return _sum_pool2(mod(q))
        return mod(q.reshape(q.shape[0], -1))

    def _feedback_sum(self, l: int, q: torch.Tensor) -> torch.Tensor:
        """``W_l^T`` of layer ``l``'s spikes into layer ``l-1`` (functional, unhooked)."""
        w = self.synapses[l - 1].weight.detach()
        shape_in = self.shapes[l - 1]
        if self.kinds[l - 1] == "fc":
            return (q.reshape(q.shape[0], -1) @ w).reshape((q.shape[0],) + shape_in)
        pad = self.synapses[l - 1].padding[0]
        full = F.conv_transpose2d(q, fused_kernel(w), stride=2)
        _, h, wd = shape_in
        fh, fw = full.shape[-2:]
        if fh < pad + h or fw < pad + wd:
            full = F.pad(full, (0, max(0, pad + wd - fw), 0, max(0, pad + h - fh)))
        return full[..., pad:pad + h, pad:pad + wd]

    @torch.no_grad()
    def forward(self, x: torch.Tensor):
        dtype = self.synapses[0].weight.dtype
        bsz = x.shape[0]
        if self._prev is None:
            self._prev = [torch.zeros((bsz,) + s, dtype=dtype) for s in self.shapes[1:]]
        prev = [x.to(dtype).reshape((bsz,) + self.shapes[0])] + self._prev
        n = len(self.neurons)
        new = []
        for l in range(1, n + 1):
            u_fwd = self._forward_sum(l, prev[l - 1])
            u_fb = (self._feedback_sum(l + 1, prev[l + 1]) if l < n
                    else torch.zeros_like(u_fwd))
            q, _ = self.neurons[l - 1](u_fwd, u_fb)
            new.append(q.to(dtype))
        self._prev = new
        return new[-1].to(torch.float32), self.neurons[-1].mem

    def predictions(self) -> torch.Tensor:
        """First maximum of the output state ``s`` (the core's prediction), int64 ``(B,)``."""
        return torch.argmax(self.neurons[-1].s, dim=1)


def to_torch(net: Network) -> TorchEPNet:
    """The free phase of ``net`` as a stepwise torch module (see the module docstring)."""
    return TorchEPNet(net)


def run_free_phase(port: TorchEPNet, x_fp, net: Network) -> tuple[list[torch.Tensor], torch.Tensor]:
    """T1 calls on a batch: per-layer spikes ``(B, T1, *shape)`` for layers 1..L and predictions."""
    train = input_spike_train(net, x_fp)
    port.reset()
    spikes = [[] for _ in port.neurons]
    for t in range(train.shape[1]):
        port(train[:, t])
        for l, p in enumerate(port._prev):
            spikes[l].append(p.to(torch.uint8))
    return [torch.stack(s, dim=1) for s in spikes], port.predictions()
