"""The real-valued reference model: the neurochip network without quantisation.

This is the un-quantised version of the integer contract (``docs/numerics.md``):
the same architecture, the same step order and the same three-phase EP rule,
but with floating-point states, weights and constants.  Two dynamics:

* **spiking** (default): every layer, the input included, sends binary spikes
  made by O'Connor's predictive sigma-delta encoder
  (``c = (a - (1-lam) a_prev)/lam``, ``phi += c``, ``q = [phi > theta]``,
  ``phi -= q``); the receiver decodes the summed weighted input with
  ``dec = (1-lam) dec + lam u``;
* **CRNN** (``spiking=False``): the convergent RNN of the ablation, i.e. the
  spikes are replaced by ``rho(s) = s`` and the decoder by the identity
  (``lam = 1``).

One time step ``k`` (synchronous, one step of delay on every edge, the
input -> layer 1 edge included; ``docs/numerics.md`` §5):

1. synaptic input from what every layer emitted at ``k-1``::

       u_l = F_l(q_{l-1}) + B_{l+1}(q_{l+1})
       F_l = avgpool(conv(q, W_l))      | maxpool(conv(q, W_l))  | W_l flat(q)
       B_l = convT(alpha NNup+pad(q), W) | convT(unpool(q, I), W)  | unflatten(W^T q)

   (``alpha`` only between two avg-pooled conv layers, 1 otherwise; ``I`` the
   argmax of layer ``l+1``'s forward max-pool of the same step);
2. neuron update of layers ``1..L``::

       dec   = dec + lam (u - dec)                      (CRNN: dec = u)
       drive = dec + b [+ beta (y - s_L) at the output]
       s     = clamp(s + eps (drive - s), 0, 1)

3. encoders of layers ``0..L`` (layer 0 encodes the image ``x``) emit the
   spikes of step ``k`` (CRNN: ``q_l = s_l``, ``q_0 = x``).

Training is three-phase EP (``algorithm.md`` §3.2, §6): ``t1`` free steps,
snapshot of the *complete* state (states, decoders, encoder residues and
memories, spikes in flight, max-pool indices), ``t2`` steps with ``+beta``,
restore, ``t2`` steps with ``-beta``; then per layer::

    g_l = -(1/(2 beta)) [dPhi/dtheta_l(s+) - dPhi/dtheta_l(s-)]     (estimate of dL/dtheta)
    theta_l <- theta_l - lr_l g_l

with the closed forms of ``algorithm.md`` §3.3 on the continuous states
(batch mean): ``dPhi/dW = s_l s_{l-1}^T`` for FC layers and the correlation of
the pre map with the post map brought back to conv resolution for conv layers
(avg-pool: ``c * NN-upsample`` with ``c = 1/4``, the exact dPhi/dW, or
``alpha`` with ``update_scale='alpha'``; max-pool: unpool at the phase's last
forward argmax).  This is exactly what the integer learning rule computes,
without traces and rounding.

Everything here is plain differentiable PyTorch, so :mod:`reference.bptt`
unrolls the same :meth:`RealModel.step` with autograd.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from neurochip.network import (Architecture, Hyper, Network, initial_real_parameters,
                               quantise_biases, quantise_weights)

__all__ = ["RealModel", "State", "EPResult", "float_init", "mse", "onehot", "spike_fn",
           "train_epoch", "evaluate"]


# ------------------------------------------------------------------ helpers
def onehot(labels, n_classes: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    lab = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
    y = torch.zeros(len(lab), n_classes, dtype=dtype, device=device)
    y[torch.arange(len(lab), device=device), lab] = 1.0
    return y


def mse(s_out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/2 sum_k (s_k - y_k)^2``, mean over the batch (the EP/BPTT loss)."""
    return 0.5 * ((s_out - y) ** 2).sum(dim=1).mean()


class _Triangle(torch.autograd.Function):
    """Heaviside ``[v > 0]`` with the triangle surrogate ``max(0, 1 - |v|)``."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * torch.clamp(1.0 - v.abs(), min=0.0)


def spike_fn(v: torch.Tensor, surrogate: str = "st") -> torch.Tensor:
    """Binary spike ``[v > 0]`` (``v`` = potential minus threshold).

    ``surrogate`` only matters under autograd (BPTT):

    * ``'st'`` straight-through: ``dq/dv = 1``.  The sigma-delta quantiser is
      then treated as additive noise (``q = v - e`` with the residue ``e``
      held constant), so the subtractive reset carries no gradient and the
      encoder/decoder pair back-propagates like the identity filter it
      approximates.  Default.
    * ``'triangle'``: ``dq/dv = max(0, 1 - |v|)`` (unit area).
    * ``'none'``: hard threshold, no gradient.
    """
    if surrogate == "st":
        h = (v > 0).to(v.dtype)
        return h + (v - v.detach()) if v.requires_grad else h
    if surrogate == "triangle":
        return _Triangle.apply(v) if v.requires_grad else (v > 0).to(v.dtype)
    if surrogate == "none":
        return (v > 0).to(v.dtype)
    raise ValueError(f"unknown surrogate {surrogate!r}; use 'st', 'triangle' or 'none'")


def float_init(arch: Architecture | str, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The un-quantised initial weights and biases of ``Network.create(arch, seed=seed)``
    (independent of the bit widths)."""
    if isinstance(arch, str):
        arch = Architecture.parse(arch)
    return initial_real_parameters(arch, seed)


# -------------------------------------------------------------------- state
@dataclass
class State:
    """The complete dynamical state, per layer ``0..L`` (index 0 = input).

    ``s``: states (``s[0]`` = the clamped input); ``dec``: decoders (``dec[0]``
    unused); ``phi``/``prev``: encoder residue and memory (spiking only);
    ``spk``: what each layer emitted at the last step (in flight);
    ``idx``: per layer the max-pool argmax of its last forward route.
    """

    s: list
    dec: list
    phi: list
    prev: list
    spk: list
    idx: list

    def clone(self) -> "State":
        c = lambda lst: [None if t is None else t.clone() for t in lst]  # noqa: E731
        return State(c(self.s), c(self.dec), c(self.phi), c(self.prev), c(self.spk), c(self.idx))

    def detach(self) -> "State":
        d = lambda lst: [None if t is None else t.detach() for t in lst]  # noqa: E731
        return State(d(self.s), d(self.dec), d(self.phi), d(self.prev), d(self.spk), d(self.idx))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for lst in
                   (self.s, self.dec, self.phi, self.prev, self.spk, self.idx)
                   for t in lst if t is not None)


@dataclass
class EPResult:
    """One three-phase EP pass on a batch.

    ``grads[l] = (gW, gb)``: the symmetric estimate of ``dL/dtheta`` (batch
    mean), layer ``l = 0..L-1``; ``free``/``plus``/``minus``: the states at the
    end of each phase; ``loss``: MSE of the free output; ``predictions``.
    """

    grads: list
    free: State
    plus: State
    minus: State
    loss: float
    predictions: np.ndarray
    dphi_plus: list = field(default_factory=list)
    dphi_minus: list = field(default_factory=list)


# -------------------------------------------------------------------- model
class RealModel:
    """A real-valued (spiking or CRNN) EP network in PyTorch.

    ``weights``/``biases``: per layer, PyTorch layout, real units.  ``hyper``:
    a :class:`neurochip.network.Hyper` (beta, epsilon, lam, alpha, theta, t1,
    t2, lrs, pool, update_scale, batch_size).
    """

    def __init__(self, arch: Architecture | str, weights, biases, hyper: Hyper,
                 spiking: bool = True, dtype=torch.float64, device="cpu",
                 surrogate: str = "st", clamp_grad: str = "exact", fused: bool | None = None):
        if isinstance(arch, str):
            arch = Architecture.parse(arch)
        self.arch = arch
        self.hyper = hyper
        self.spiking = bool(spiking)
        self.dtype = dtype
        self.device = torch.device(device)
        self.surrogate = surrogate
        if clamp_grad not in ("exact", "st", "st-output"):
            raise ValueError(f"clamp_grad must be 'exact', 'st' or 'st-output', got {clamp_grad!r}")
        self.clamp_grad = clamp_grad
        self.W = [torch.as_tensor(np.asarray(w), dtype=dtype, device=self.device).clone()
                  for w in weights]
        self.b = [torch.as_tensor(np.asarray(b), dtype=dtype, device=self.device).clone()
                  for b in biases]
        self.L = arch.n_layers
        self.kinds = [spec.kind for spec in arch.layers]
        self.pads = [spec.padding for spec in arch.layers]
        self.state_shapes = [tuple(arch.input_shape)] + [tuple(s) for s in arch.state_shapes()]
        self.conv_hw = [None] + [arch.conv_shape(i)[1:] if k == "conv" else None
                                 for i, k in enumerate(self.kinds)]
        self.updates = 0
        # avg-pool conv edges as one stride-2 convolution with the (K+1)^2 kernel
        # (the same sums in another order); by default for float32, the fast
        # dtype, so that float64 runs keep their historical rounding exactly
        self.fused = (dtype == torch.float32) if fused is None else bool(fused)
        self._fused_cache: dict = {}

    # construction -------------------------------------------------------
    @classmethod
    def from_network(cls, net: Network, spiking: bool = True, weights: str = "network",
                     dtype=torch.float64, device="cpu", surrogate: str = "st",
                     clamp_grad: str = "exact", fused: bool | None = None,
                     **hyper_overrides) -> "RealModel":
        """The real-valued twin of ``net``.

        ``weights='network'``: ``net.real_weights()``/``real_biases()`` (the
        integer parameters read as reals); ``'float'``: the un-quantised
        initial draw of ``Network.create`` with ``net.seed``
        (:func:`float_init`; only meaningful for a freshly created network).
        ``hyper_overrides`` replace fields of ``net.hyper`` (e.g. ``alpha=0.25,
        t1=100``).
        """
        hyper = dataclasses.replace(net.hyper, **hyper_overrides) if hyper_overrides else net.hyper
        if weights == "network":
            ws, bs = net.real_weights(), net.real_biases()
        elif weights == "float":
            ws, bs = float_init(net.arch, net.seed)
        else:
            raise ValueError(f"weights must be 'network' or 'float', got {weights!r}")
        return cls(net.arch, ws, bs, hyper, spiking=spiking, dtype=dtype, device=device,
                   surrogate=surrogate, clamp_grad=clamp_grad, fused=fused)

    def copy(self, **kw) -> "RealModel":
        args = dict(spiking=self.spiking, dtype=self.dtype, device=self.device,
                    surrogate=self.surrogate, clamp_grad=self.clamp_grad, fused=self.fused)
        hyper_kw = {k: kw.pop(k) for k in list(kw) if k in Hyper.__dataclass_fields__}
        args.update(kw)
        hyper = dataclasses.replace(self.hyper, **hyper_kw) if hyper_kw else self.hyper
        m = RealModel(self.arch, [w.detach().cpu().numpy() for w in self.W],
                      [b.detach().cpu().numpy() for b in self.b], hyper, **args)
        m.updates = self.updates
        return m

    def to_network(self, net: Network) -> Network:
        """A copy of ``net`` with this model's parameters rounded into its widths."""
        out = net.copy()
        for l in range(self.L):
            out.weights_q[l] = quantise_weights(self.W[l].detach().cpu().numpy(),
                                                net.weight_exp[l], net.widths)
            out.biases_q[l] = quantise_biases(self.b[l].detach().cpu().numpy(), net.widths)
        return out

    # inputs -------------------------------------------------------------
    def inputs(self, x, scale: float | None = None) -> torch.Tensor:
        """A batch as ``(B, C, H, W)`` reals: ``x / scale`` (e.g. ``scale=ONE``
        for quantised pixels, ``pixel_max`` for raw images)."""
        t = torch.as_tensor(np.asarray(x), device=self.device).to(self.dtype)
        if scale is not None:
            t = t / scale
        return t.reshape((t.shape[0],) + self.state_shapes[0])

    # dynamics -----------------------------------------------------------
    def init_state(self, x: torch.Tensor) -> State:
        bsz = x.shape[0]
        def z(shp):
            return torch.zeros((bsz,) + tuple(shp), dtype=self.dtype, device=self.device)
        shapes = self.state_shapes
        s = [x] + [z(shp) for shp in shapes[1:]]
        dec = [None] + [z(shp) for shp in shapes[1:]]
        spk = [z(shp) for shp in shapes]
        if self.spiking:
            phi = [z(shp) for shp in shapes]
            prev = [z(shp) for shp in shapes]
        else:
            phi = [None] * (self.L + 1)
            prev = [None] * (self.L + 1)
        return State(s, dec, phi, prev, spk, [None] * (self.L + 1))

    def _fused_kernel(self, W: torch.Tensor) -> torch.Tensor:
        """``(C_out, C_in, K+1, K+1)``: ``Wf[a, b] = sum_{m, n in {0, 1}} W[a-m, b-n]``.

        A convolution with ``W`` followed by a 2x2 *sum* pool equals one
        stride-2 convolution with ``Wf``, at about a quarter of the
        multiply-adds; its transpose likewise replaces the upsampled feedback.
        Cached per weight version (``apply`` updates the weights in place);
        recomputed for tensors that carry gradients (BPTT's leaves).
        """
        if W.requires_grad:
            return (F.pad(W, (0, 1, 0, 1)) + F.pad(W, (1, 0, 0, 1))
                    + F.pad(W, (0, 1, 1, 0)) + F.pad(W, (1, 0, 1, 0)))
        key = id(W)
        hit = self._fused_cache.get(key)
        if hit is None or hit[0] is not W or hit[1] != W._version:
            wf = (F.pad(W, (0, 1, 0, 1)) + F.pad(W, (1, 0, 0, 1))
                  + F.pad(W, (0, 1, 1, 0)) + F.pad(W, (1, 0, 1, 0)))
            hit = (W, W._version, wf)
            self._fused_cache[key] = hit
        return hit[2]

    def _forward(self, l: int, q: torch.Tensor, W: torch.Tensor):
        """Forward route into layer ``l`` (1-based) from layer ``l-1``'s emission."""
        i = l - 1
        if self.kinds[i] == "conv":
            if self.hyper.pool == "max":
                c = F.conv2d(q, W, padding=self.pads[i])
                return F.max_pool2d(c, 2, return_indices=True)
            if self.fused:
                return F.conv2d(q, self._fused_kernel(W), stride=2, padding=self.pads[i]) * 0.25, None
            return F.avg_pool2d(F.conv2d(q, W, padding=self.pads[i]), 2), None
        return q.reshape(q.shape[0], -1) @ W.t(), None

    def _upsample(self, l: int, z: torch.Tensor, idx, scale: float) -> torch.Tensor:
        """Layer ``l``'s pooled map at conv resolution: ``scale * NN-upsample``
        zero-padded right/bottom (avg) or the unpool at ``idx`` (max)."""
        hc, wc = self.conv_hw[l]
        if idx is not None:
            return F.max_unpool2d(z, idx, 2, output_size=(hc, wc))
        up = z.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3) * scale
        return F.pad(up, (0, wc - up.shape[3], 0, hc - up.shape[2]))

    def _feedback(self, l: int, q_next: torch.Tensor, idx_next, W_next: torch.Tensor):
        """Feedback into layer ``l`` from layer ``l+1``'s emission, through ``W_{l+1}``."""
        i = l  # 0-based index of layer l+1
        if self.kinds[i] == "conv":
            both_avg = self.kinds[l - 1] == "conv" and self.hyper.pool == "avg"
            scale = self.hyper.alpha if both_avg else 1.0
            if self.fused and self.hyper.pool == "avg":
                # transpose of the fused stride-2 convolution; output_padding
                # restores the rows/columns the floor of the pooling dropped
                h, w = self.state_shapes[l][1:]
                k, pad = W_next.shape[-1], self.pads[i]
                hp, wp = q_next.shape[2:]
                extra = (h - (2 * (hp - 1) - 2 * pad + k + 1), w - (2 * (wp - 1) - 2 * pad + k + 1))
                out = F.conv_transpose2d(q_next, self._fused_kernel(W_next), stride=2,
                                         padding=pad, output_padding=extra)
                return out * scale if scale != 1.0 else out
            up = self._upsample(l + 1, q_next, idx_next, scale)
            return F.conv_transpose2d(up, W_next, padding=self.pads[i])
        fb = q_next @ W_next
        return fb.reshape((q_next.shape[0],) + self.state_shapes[l])

    def _clamp(self, v: torch.Tensor, output: bool = False) -> torch.Tensor:
        """``rho = clamp(v, 0, 1)``.  Under autograd its derivative is the indicator
        of ``[0, 1]`` (``clamp_grad='exact'``), or 1 (straight-through) everywhere
        (``'st'``) or at the output layer only (``'st-output'``): options for BPTT,
        whose exact gradient is zero through a clamped unit."""
        c = torch.clamp(v, 0.0, 1.0)
        if v.requires_grad and (self.clamp_grad == "st"
                                or (self.clamp_grad == "st-output" and output)):
            return v + (c - v).detach()
        return c

    def step(self, st: State, y: torch.Tensor | None = None, beta: float = 0.0,
             params=None, surrogate: str | None = None) -> State:
        """One synchronous time step (functional: returns a new :class:`State`).

        ``params=(W, b)`` substitutes parameters (BPTT passes leaf tensors).
        """
        W, b = params if params is not None else (self.W, self.b)
        h, L = self.hyper, self.L
        sur = surrogate or self.surrogate
        q = st.spk
        fwd, idx = [None] * (L + 1), [None] * (L + 1)
        for l in range(1, L + 1):
            fwd[l], idx[l] = self._forward(l, q[l - 1], W[l - 1])
        s_new, dec_new = [st.s[0]], [None]
        for l in range(1, L + 1):
            u = fwd[l]
            if l < L:
                u = u + self._feedback(l, q[l + 1], idx[l + 1], W[l])
            dec = st.dec[l] + h.lam * (u - st.dec[l]) if self.spiking else u
            bias = b[l - 1].reshape((1, -1) + (1,) * (st.s[l].dim() - 2))
            drive = dec + bias
            if l == L and beta != 0.0:
                drive = drive + beta * (y - st.s[L])
            s_new.append(self._clamp(st.s[l] + h.epsilon * (drive - st.s[l]), l == L))
            dec_new.append(dec)
        if not self.spiking:
            return State(s_new, dec_new, st.phi, st.prev, list(s_new), idx)
        phi_new, prev_new, spk_new = [], [], []
        for l in range(L + 1):
            a = s_new[l]
            v = st.phi[l] + (a - (1.0 - h.lam) * st.prev[l]) / h.lam
            qq = spike_fn(v - h.theta, sur)
            phi_new.append(v - qq)
            prev_new.append(a)
            spk_new.append(qq)
        return State(s_new, dec_new, phi_new, prev_new, spk_new, idx)

    def run(self, st: State, steps: int, y=None, beta: float = 0.0, params=None,
            callback=None) -> State:
        for k in range(steps):
            st = self.step(st, y, beta, params)
            if callback is not None:
                callback(k, st)
        return st

    # EP -----------------------------------------------------------------
    def dphi(self, st: State, params=None) -> list:
        """Batch-mean ``(dPhi/dW_l, dPhi/db_l)`` at the continuous states of ``st``.

        Conv layers: correlation of the pre map with ``P^T s_l`` (avg-pool:
        ``c * NN-upsample``, ``c = 1/4`` or ``alpha``; max-pool: unpool at
        the layer's last forward argmax ``st.idx[l]``); FC: ``s_l s_{l-1}^T``.
        """
        W = params[0] if params is not None else self.W
        bsz = st.s[0].shape[0]
        out = []
        for l in range(1, self.L + 1):
            pre, post = st.s[l - 1], st.s[l]
            if self.kinds[l - 1] == "conv":
                if self.hyper.pool == "max":
                    g = self._upsample(l, post, st.idx[l], 1.0)
                else:
                    c = 0.25 if self.hyper.update_scale == "quarter" else self.hyper.alpha
                    g = self._upsample(l, post, None, c)
                gw = torch.nn.grad.conv2d_weight(pre, W[l - 1].shape, g,
                                                 padding=self.pads[l - 1]) / bsz
                gb = post.sum(dim=(2, 3)).mean(dim=0)
            else:
                gw = post.t() @ pre.reshape(bsz, -1) / bsz
                gb = post.mean(dim=0)
            out.append((gw, gb))
        return out

    @torch.no_grad()
    def free_phase(self, x: torch.Tensor, steps: int | None = None) -> State:
        st = self.init_state(x)
        return self.run(st, self.hyper.t1 if steps is None else steps)

    @torch.no_grad()
    def ep(self, x: torch.Tensor, labels, beta: float | None = None, t1: int | None = None,
           t2: int | None = None, symmetric: bool = True, free: State | None = None,
           callback=None) -> EPResult:
        """Free phase, +beta phase, restore, -beta phase; the EP estimate.

        ``symmetric=False``: two-phase EP, ``-(1/beta)[dPhi(s+) - dPhi(s0)]``.
        ``free``: a free-phase end state to start the nudged phases from (it
        is not modified), e.g. to share one free phase between several betas.
        ``callback(k, state)`` is called after every step (memory probes).
        """
        h = self.hyper
        beta = h.beta if beta is None else beta
        t1 = h.t1 if t1 is None else t1
        t2 = h.t2 if t2 is None else t2
        y = onehot(labels, self.arch.num_classes, self.dtype, self.device)
        if free is None:
            free = self.run(self.init_state(x), t1, callback=callback)
        plus = self.run(free.clone(), t2, y, +beta, callback=callback)
        d_plus = self.dphi(plus)
        if symmetric:
            minus = self.run(free.clone(), t2, y, -beta, callback=callback)
            d_minus = self.dphi(minus)
            scale = -1.0 / (2.0 * beta)
        else:
            minus = free
            d_minus = self.dphi(free)
            scale = -1.0 / beta
        grads = [((gp - gm) * scale, (bp - bm) * scale)
                 for (gp, bp), (gm, bm) in zip(d_plus, d_minus)]
        loss = float(mse(free.s[-1], y))
        preds = free.s[-1].argmax(dim=1).cpu().numpy()
        return EPResult(grads, free, plus, minus, loss, preds, d_plus, d_minus)

    @torch.no_grad()
    def apply(self, grads, lrs=None) -> None:
        """SGD: ``theta_l -= lr_l g_l``."""
        lrs = self.hyper.lrs if lrs is None else lrs
        for l, (gw, gb) in enumerate(grads):
            self.W[l] -= lrs[l] * gw
            self.b[l] -= lrs[l] * gb
        self.updates += 1

    def train_step(self, x: torch.Tensor, labels, callback=None) -> EPResult:
        """One EP update on a minibatch (returns the pass, loss of the free phase)."""
        res = self.ep(x, labels, callback=callback)
        self.apply(res.grads)
        return res

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        st = self.free_phase(x)
        return st.s[-1].argmax(dim=1).cpu().numpy(), st.s[-1]


# --------------------------------------------------------- training loops
def evaluate(model: RealModel, x: torch.Tensor, labels,
             batch_size: int = 256) -> tuple[float, float]:
    """Free phase only; ``(error fraction, mean MSE of the free output)``."""
    labels = np.asarray(labels)
    wrong, loss = 0, 0.0
    for start in range(0, len(labels), batch_size):
        sl = slice(start, start + batch_size)
        preds, out = model.predict(x[sl])
        y = onehot(labels[sl], model.arch.num_classes, model.dtype, model.device)
        wrong += int((preds != labels[sl]).sum())
        loss += float(mse(out, y)) * len(preds)
    n = max(len(labels), 1)
    return wrong / n, loss / n


def train_epoch(model, x: torch.Tensor, labels, epoch: int, seed: int = 0,
                step_fn=None, on_batch=None) -> tuple[float, float]:
    """One epoch of minibatch training with the core's sample order.

    The order is :func:`neurochip.trainer.epoch_order` ``(seed, epoch)`` and the
    batch size ``model.hyper.batch_size``, so the real model sees the same
    batches as the integer core would.  ``step_fn(x, labels) -> (preds, loss)``
    defaults to EP (:meth:`RealModel.train_step`); :mod:`reference.bptt` passes
    its BPTT step.  Returns ``(train error on the fly, mean loss)``.
    """
    from neurochip.trainer import epoch_order
    labels = np.asarray(labels)
    bs = model.hyper.batch_size
    order = epoch_order(seed, epoch, len(labels))
    if step_fn is None:
        def step_fn(xb, yb):
            r = model.train_step(xb, yb)
            return r.predictions, r.loss
    wrong, loss, seen = 0, 0.0, 0
    for i in range(len(labels) // bs):
        idx = order[i * bs:(i + 1) * bs]
        preds, lval = step_fn(x[torch.as_tensor(idx, device=x.device)], labels[idx])
        wrong += int((np.asarray(preds) != labels[idx]).sum())
        loss += lval * bs
        seen += bs
        if on_batch is not None:
            on_batch(i, lval)
    return wrong / max(seen, 1), loss / max(seen, 1)
