"""The exact mirror: a dense, batched PyTorch execution of docs/numerics.md.

Where the Numba core (:mod:`neurochip.core`) is event driven (it scatters the
weights of each spike), the mirror is dense: every step it forms all synaptic
sums of a whole minibatch with convolutions and matrix products, then applies
the neuron and encoder rules to whole tensors.  It must give the *same
integers*: every spike of every step, the states at the end of each phase, the
traces, the max-pool argmax, the counters and the weights after each update.

Exactness
---------
* Every state variable is an ``int64`` tensor; every shift, rounding and
  saturation rule is called from :mod:`neurochip.numerics` (through
  :mod:`reference.ops`, the tensor-callable twins of the ``py_func``\\ s).
* Synaptic sums ``u = sum_j q_j w_j`` (``q`` in {0, 1}) and the contrastive
  sums ``G`` are formed in ``float64`` by ``conv2d`` / ``conv_transpose2d`` /
  ``conv2d_weight`` / ``matmul``.  Every operand is an integer and every
  partial sum, in any order of summation, is bounded in magnitude by the sum
  of the absolute values of all the terms; that bound is computed in Python
  integers and asserted ``< 2**53``, so each float64 operation is exact and the
  result converts back to int64 without error.  Only algorithms that multiply
  and add the operands themselves (im2col + GEMM, direct) keep this property:
  on CUDA the convolutions run with cuDNN disabled (no FFT / Winograd
  transforms, no TF32), on the CPU float64 convolutions always use
  PyTorch's own im2col + GEMM path.  No float32 path exists.

Layout: canonical PyTorch order everywhere, maps ``(B, C, H, W)``, FC layers
``(B, n)``, flattening ``C, H, W``.  :mod:`reference.backend` converts to the
core's internal order for :class:`neurochip.core.BatchResult`.

The EP update (:func:`contrastive_sums`, :meth:`Mirror.update`) is written here
in torch as well, independent of :mod:`neurochip.learning`; the tests check
that both give the same integers.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_weight

from neurochip import neuron as _neuron
from neurochip.bounds import check_exact, contrastive_sum_bound
from neurochip.pooling import fused_kernel, kernel_side
from neurochip.neuron import Alignment, EncoderState, NeuronState
from neurochip.kinds import (K_ACTIVE, K_EVENTS_FB, K_EVENTS_FWD, K_SAT_DEC, K_SAT_INPUT,
                            K_SAT_PSI, K_SPIKES, K_UPDATES, N_COUNTS)
from neurochip.errors import UserError
from neurochip.learning import UpdateStats
from neurochip.network import Network

from . import ops

steps = _neuron.pure     # the neuron's update sequence, on tensors (neurochip.neuron)

I64 = torch.int64
F64 = torch.float64
_assert_exact = check_exact


def resolve_device(device) -> torch.device:
    """``'cpu'``, ``'cuda'``, ``'cuda:N'`` (or None = cpu) as a usable torch device."""
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise UserError(f"--device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"--device must be 'cpu' or 'cuda', got {device!r}")
    return dev


def exact_mode(device: torch.device):
    """Context in which float64 convolutions are plain multiply-adds (see module doc)."""
    if device.type == "cuda":
        return torch.backends.cudnn.flags(enabled=False, benchmark=False, deterministic=True,
                                          allow_tf32=False)
    return contextlib.nullcontext()


# ------------------------------------------------------------------ layers
@dataclass
class _Layer:
    """Static description of layer ``index`` (1-based) as the mirror executes it."""

    index: int
    kind: str                   # 'conv' or 'fc'
    shape: tuple                # state shape
    in_shape: tuple             # shape of layer index-1
    kernel: int = 0
    padding: int = 0
    hc: int = 0                 # pre-pool conv map (max-pool, learning)
    wc: int = 0
    is_max: bool = False
    sh_fwd: int = 0
    fb_mult: int = 0
    sh_fb: int = 0
    sh_out: int = 0
    fan_fwd: object = None      # events a spike of layer index-1 causes (map or int)
    fan_fb: object = None       # events a spike of this layer causes in index-1 (map/int)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))


def _count_1d(n_src: int, n_dst: int, taps: int, src_to_dst) -> np.ndarray:
    """Per source coordinate, how many of the ``taps`` offsets land inside ``[0, n_dst)``."""
    out = np.zeros(n_src, np.int64)
    for y in range(n_src):
        for a in range(taps):
            d = src_to_dst(y, a)
            if d is not None and 0 <= d < n_dst:
                out[y] += 1
    return out


def _fanouts(layer: _Layer) -> None:
    """Synaptic events per spike (docs §4): fan-out within the map, borders included."""
    if layer.kind == "fc":
        layer.fan_fwd = layer.size          # an input spike reaches every output
        layer.fan_fb = layer.in_size        # a spike of this layer reaches every input
        return
    cin, hin, win = layer.in_shape
    cout, hp, wp = layer.shape
    k, p = layer.kernel, layer.padding
    if not layer.is_max:
        kf = kernel_side(k, False)

        def fwd(y, a):   # input row y -> pooled row r with y + P = 2r + a
            t = y + p - a
            return t // 2 if t >= 0 and t % 2 == 0 else None
        cy = _count_1d(hin, hp, kf, fwd)
        cx = _count_1d(win, wp, kf, fwd)
        layer.fan_fwd = torch.as_tensor(np.outer(cy, cx) * cout)
        by = _count_1d(hp, hin, kf, lambda i, a: 2 * i - p + a)
        bx = _count_1d(wp, win, kf, lambda j, b: 2 * j - p + b)
        layer.fan_fb = torch.as_tensor(np.outer(by, bx) * cin)
    else:
        cy = _count_1d(hin, layer.hc, k, lambda y, a: y + p - a)
        cx = _count_1d(win, layer.wc, k, lambda x, b: x + p - b)
        layer.fan_fwd = torch.as_tensor(np.outer(cy, cx) * cout)
        tab = np.zeros((4, hp, wp), np.int64)
        for m in (0, 1):
            by = _count_1d(hp, hin, k, lambda i, a: 2 * i + m - p + a)
            for n in (0, 1):
                bx = _count_1d(wp, win, k, lambda j, b: 2 * j + n - p + b)
                tab[2 * m + n] = np.outer(by, bx) * cin
        layer.fan_fb = torch.as_tensor(tab)


def build_layers(net: Network) -> list[_Layer]:
    arch, consts = net.arch, net.constants()
    shapes = [tuple(arch.input_shape)] + [tuple(s) for s in arch.state_shapes()]
    is_max = net.hyper.pool == "max"
    layers = []
    for i, spec in enumerate(arch.layers):
        lc = consts.layers[i]
        lay = _Layer(i + 1, spec.kind, shapes[i + 1], shapes[i], sh_fwd=lc.sh_fwd,
                     fb_mult=lc.fb_mult, sh_fb=lc.sh_fb, sh_out=lc.sh_out)
        if spec.kind == "conv":
            _, hc, wc = arch.conv_shape(i)
            lay.kernel, lay.padding, lay.hc, lay.wc, lay.is_max = (
                spec.kernel, spec.padding, hc, wc, is_max)
        _fanouts(lay)
        layers.append(lay)
    return layers


def _crop(full: torch.Tensor, pad: int, h: int, w: int) -> torch.Tensor:
    """``full[..., pad:pad+h, pad:pad+w]``, zero beyond ``full``'s extent."""
    fh, fw = full.shape[-2:]
    if fh < pad + h or fw < pad + w:
        full = F.pad(full, (0, max(0, pad + w - fw), 0, max(0, pad + h - fh)))
    return full[..., pad:pad + h, pad:pad + w]


def _to_int(t: torch.Tensor) -> torch.Tensor:
    """float64 holding exact integers (bounds asserted) -> int64."""
    return t.to(I64)


# ------------------------------------------------------------------ results
@dataclass
class TorchTraces:
    """Canonical traces of one layer, int64 ``(B, *shape)``; max-pool argmax or None."""

    plus: torch.Tensor
    minus: torch.Tensor
    idx_plus: torch.Tensor | None = None
    idx_minus: torch.Tensor | None = None


@dataclass
class MirrorResult:
    """What one batch produced, per layer ``0..L`` in canonical order (torch tensors).

    ``traces[l]`` int64 ``(B, 2, *shape)`` (+beta, -beta); ``pool_idx[l]`` int8
    ``(B, 2, *shape)`` for max-pool conv layers, else None; ``s_free`` int64
    ``(B, classes)``; ``counts`` int64 ``(B, 3, L+1, N_COUNTS)`` as the core's;
    when recording, ``rec_spikes[l]`` uint8 ``(B, steps, *shape)`` and
    ``rec_state[l]`` int64 ``(B, 3, 4, *shape)`` (s, dec, psi, enc_prev at the
    end of each phase; zero for phases not run).
    """

    traces: list
    pool_idx: list
    s_free: torch.Tensor
    predictions: torch.Tensor
    counts: torch.Tensor
    rec_spikes: list | None = None
    rec_state: list | None = None

    def layer_traces(self) -> list[TorchTraces]:
        out = []
        for t, idx in zip(self.traces, self.pool_idx):
            tt = TorchTraces(t[:, 0], t[:, 1])
            if idx is not None:
                tt.idx_plus, tt.idx_minus = idx[:, 0].to(I64), idx[:, 1].to(I64)
            out.append(tt)
        return out


# ------------------------------------------------------------------ mirror
class Mirror:
    """A :class:`Network` executed densely in PyTorch (CPU or CUDA), in integers.

    The mirror holds its own copy of the integer parameters (``weights``,
    ``biases``: int64 tensors, PyTorch layout) and update counter; :meth:`load`
    reads them from a network, :meth:`store` writes them back.
    """

    def __init__(self, net: Network, device="cpu"):
        self.net = net
        self.device = resolve_device(device)
        self.consts = net.constants()
        self.layers = build_layers(net)
        for lay in self.layers:
            for name in ("fan_fwd", "fan_fb"):
                v = getattr(lay, name)
                if isinstance(v, torch.Tensor):
                    setattr(lay, name, v.to(self.device))
        self.load(net)

    # parameters --------------------------------------------------------
    def load(self, net: Network | None = None) -> None:
        """(Re-)read the integer parameters and the update counter from ``net``."""
        net = net or self.net
        self.weights = [torch.as_tensor(np.asarray(w, np.int64), device=self.device)
                        for w in net.weights_q]
        self.biases = [torch.as_tensor(np.asarray(b, np.int64), device=self.device)
                       for b in net.biases_q]
        self.updates = int(net.updates)
        self._derive()

    def store(self, net: Network | None = None) -> None:
        """Write the parameters and the update counter into ``net`` (int32 arrays)."""
        net = net or self.net
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            net.weights_q[l][...] = w.cpu().numpy().astype(np.int32)
            net.biases_q[l][...] = b.cpu().numpy().astype(np.int32)
        net.updates = self.updates

    def weights_sha256(self) -> str:
        """The network's ``weights_sha256`` of the mirror's parameters."""
        import hashlib
        hsh = hashlib.sha256()
        for w, b in zip(self.weights, self.biases):
            hsh.update(np.ascontiguousarray(w.cpu().numpy(), dtype="<i4").tobytes())
            hsh.update(np.ascontiguousarray(b.cpu().numpy(), dtype="<i4").tobytes())
        return hsh.hexdigest()

    def _derive(self) -> None:
        """float64 synaptic tables (exact integers) and broadcastable biases."""
        self.kern, self.bias = [], []
        for lay, w, b in zip(self.layers, self.weights, self.biases):
            if lay.kind == "conv":
                k = w if lay.is_max else fused_kernel(w)
                self.bias.append(b.view(-1, 1, 1))
            else:
                k = w
                self.bias.append(b)
            # every forward or feedback sum is a sum of a subset of the table's
            # entries (each spike adds each entry at most once to one target)
            _assert_exact(int(k.abs().sum()), f"layer {lay.index} synaptic sums")
            self.kern.append(k.to(F64))

    # one step ----------------------------------------------------------
    def _forward(self, lay: _Layer, qf: torch.Tensor):
        """``u_fwd`` of ``lay`` from layer index-1's spikes (float64 0/1); argmax or None."""
        k = self.kern[lay.index - 1]
        bsz = qf.shape[0]
        if lay.kind == "fc":
            return _to_int(qf.reshape(bsz, -1) @ k.T), None
        if not lay.is_max:
            return _to_int(F.conv2d(qf, k, stride=2, padding=lay.padding)), None
        c = _to_int(F.conv2d(qf, k, padding=lay.padding))        # (B, Co, Hc, Wc)
        _, hp, wp = lay.shape
        best = c[:, :, 0:2 * hp:2, 0:2 * wp:2]
        arg = torch.zeros_like(best)
        for mn in (1, 2, 3):                    # first maximum in (0,0),(0,1),(1,0),(1,1)
            m, n = divmod(mn, 2)
            v = c[:, :, m:2 * hp:2, n:2 * wp:2]
            upd = v > best
            best = torch.where(upd, v, best)
            arg = torch.where(upd, torch.full_like(arg, mn), arg)
        return best, arg

    def _feedback(self, lay: _Layer, qf: torch.Tensor, idx) -> torch.Tensor:
        """``u_fb`` of layer index-1 from ``lay``'s spikes through ``W^T`` (int64)."""
        k = self.kern[lay.index - 1]
        bsz = qf.shape[0]
        if lay.kind == "fc":
            return _to_int(qf @ k).reshape((bsz,) + lay.in_shape)
        _, hin, win = lay.in_shape
        if not lay.is_max:
            full = F.conv_transpose2d(qf, k, stride=2)
        else:
            _, hp, wp = lay.shape
            up = torch.zeros(qf.shape[:2] + (lay.hc, lay.wc), dtype=F64, device=qf.device)
            for mn in range(4):
                m, n = divmod(mn, 2)
                up[:, :, m:2 * hp:2, n:2 * wp:2] = qf * (idx == mn)
            full = F.conv_transpose2d(up, k)
        return _to_int(_crop(full, lay.padding, hin, win))

    def _events_fwd(self, lay: _Layer, q: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, q.dim()))
        if lay.kind == "fc":
            return q.sum(dims) * lay.fan_fwd
        return (q * lay.fan_fwd).sum(dims)

    def _events_fb(self, lay: _Layer, q: torch.Tensor, idx) -> torch.Tensor:
        dims = tuple(range(1, q.dim()))
        if lay.kind == "fc":
            return q.sum(dims) * lay.fan_fb
        if not lay.is_max:
            return (q * lay.fan_fb).sum(dims)
        fan = sum((idx == mn) * lay.fan_fb[mn] for mn in range(4))
        return (q * fan).sum(dims)

    # a batch -----------------------------------------------------------
    @torch.no_grad()
    def run(self, x_fp, labels=None, train: bool = True, record: bool = False) -> MirrorResult:
        """Simulate a batch like :meth:`neurochip.core.CoreNet.run` (canonical results).

        ``x_fp``: int ``(B, N0)`` quantised pixels in (C, H, W) order (numpy or
        tensor); ``labels``: int ``(B,)`` or None (no label: all targets 0).
        """
        with exact_mode(self.device):
            return self._run(x_fp, labels, train, record)

    def _run(self, x_fp, labels, train, record) -> MirrorResult:
        dev, k = self.device, self.consts
        arch, hyp = self.net.arch, self.net.hyper
        n_layers = len(self.layers)
        x = torch.as_tensor(np.asarray(x_fp, dtype=np.int64) if not isinstance(x_fp, torch.Tensor)
                            else x_fp, device=dev).to(I64)
        bsz = x.shape[0]
        shapes = [tuple(arch.input_shape)] + [lay.shape for lay in self.layers]
        x = x.reshape((bsz,) + shapes[0])
        if labels is None:
            lab = torch.full((bsz,), -1, dtype=I64, device=dev)
        else:
            lab = torch.as_tensor(np.asarray(labels, dtype=np.int64) if not isinstance(
                labels, torch.Tensor) else labels, device=dev).to(I64).reshape(bsz)
        n_out = shapes[-1][0]
        target = (torch.arange(n_out, device=dev)[None, :] == lab[:, None]).to(I64) * k.one
        dyn = _neuron.dynamics(k)
        aligns = [None] + [Alignment(lay.sh_fwd, lay.fb_mult, lay.sh_fb, lay.sh_out)
                           for lay in self.layers]

        def zeros(shp, dtype=I64):
            return torch.zeros((bsz,) + tuple(shp), dtype=dtype, device=dev)

        s = [x.clone()] + [zeros(shp) for shp in shapes[1:]]
        dec = [zeros(shp) for shp in shapes]
        psi = [zeros(shp) for shp in shapes]
        encp = [zeros(shp) for shp in shapes]
        q = [zeros(shp, torch.bool) for shp in shapes]
        n_phases = 3 if train else 1
        n_steps = hyp.t1 + (2 * hyp.t2 if train else 0)
        counts = torch.zeros((bsz, 3, n_layers + 1, N_COUNTS), dtype=I64, device=dev)
        traces = [zeros((2,) + shp) for shp in shapes]
        pool_idx = [None] + [zeros((2,) + lay.shape, torch.int8)
                             if (lay.kind == "conv" and lay.is_max) else None
                             for lay in self.layers]
        rec_spk = [zeros((n_steps,) + shp, torch.uint8) for shp in shapes] if record else None
        rec_state = [zeros((3, 4) + shp) for shp in shapes] if record else None
        s_free = None
        snap = None
        step_global = 0
        idx = [None] * (n_layers + 1)
        for phase in range(n_phases):
            if phase == 2:      # restart from the complete free-phase state (incl. spikes in flight)
                s, dec, psi, encp, q = (list(v) for v in snap)
            beta_s = steps.phase_beta_q(phase, k.beta_q)
            cnt = counts[:, phase]
            for _ in range(steps.phase_steps(phase, hyp.t1, hyp.t2)):
                # 1. synaptic input from the spikes of step k-1
                qf = [qi.to(F64) for qi in q]
                u_fwd = [None] * (n_layers + 1)
                for lay in self.layers:
                    l = lay.index
                    u_fwd[l], idx[l] = self._forward(lay, qf[l - 1])
                    cnt[:, l, K_EVENTS_FWD] += self._events_fwd(lay, q[l - 1])
                u_fb = [0] * (n_layers + 1)
                for lay in self.layers[1:]:
                    l = lay.index
                    u_fb[l - 1] = self._feedback(lay, qf[l], idx[l])
                    cnt[:, l - 1, K_EVENTS_FB] += self._events_fb(lay, q[l], idx[l])
                # 2. neuron updates, layers 1..L (the nudge only at the output)
                for lay in self.layers:
                    l = lay.index
                    dims = tuple(range(1, s[l].dim()))
                    new, sat_in, sat_dec = steps.neuron_step(
                        u_fwd[l], u_fb[l], self.bias[l - 1], target, beta_s if l == n_layers else 0,
                        NeuronState(s[l], dec[l]), aligns[l], dyn)
                    cnt[:, l, K_UPDATES] += lay.size
                    cnt[:, l, K_ACTIVE] += ((new.s != s[l]) | (new.dec != dec[l])).sum(dims)
                    cnt[:, l, K_SAT_INPUT] += sat_in.sum(dims)
                    cnt[:, l, K_SAT_DEC] += sat_dec.sum(dims)
                    s[l], dec[l] = new
                # 3. encoders, layers 0..L, emit the spikes of step k
                for l in range(n_layers + 1):
                    dims = tuple(range(1, s[l].dim()))
                    qq, enc, sat = steps.encode_step(s[l], EncoderState(psi[l], encp[l]), dyn)
                    cnt[:, l, K_SAT_PSI] += sat.sum(dims)
                    cnt[:, l, K_SPIKES] += qq.sum(dims)
                    (psi[l], encp[l]), q[l] = enc, qq
                    if record:
                        rec_spk[l][:, step_global] = qq.to(torch.uint8)
                step_global += 1
            # end of phase
            if record:
                for l in range(n_layers + 1):
                    rec_state[l][:, phase] = torch.stack([s[l], dec[l], psi[l], encp[l]], 1)
            if phase == 0:
                s_free = s[n_layers].clone()
                snap = (list(s), list(dec), list(psi), list(encp), list(q))
            else:
                for l in range(n_layers + 1):
                    traces[l][:, phase - 1] = ops.trace_latch(s[l], k.trace_max,
                                                              self.net.widths.state_bits)
                    if pool_idx[l] is not None:
                        pool_idx[l][:, phase - 1] = idx[l].to(torch.int8)
        preds = torch.argmax(s_free, dim=1)
        return MirrorResult(traces, pool_idx, s_free, preds, counts, rec_spk, rec_state)

    # learning ------------------------------------------------------------
    @torch.no_grad()
    def contrastive(self, traces: list[TorchTraces]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[(G_l, Gb_l)]`` (int64 tensors) from per-layer traces (index 0 = input)."""
        with exact_mode(self.device):
            return contrastive_sums(self.net, traces)

    @torch.no_grad()
    def update(self, grads: list[tuple[torch.Tensor, torch.Tensor]], batch: int | None = None
               ) -> UpdateStats:
        """Apply one EP update to the mirror's parameters; advance the counter.

        ``batch``: minibatch size, only for the ``products`` statistic.
        """
        stats = apply_update(self.net, self.weights, self.biases, grads, self.updates,
                             batch if batch is not None else self.net.hyper.batch_size)
        self.updates += 1
        self._derive()
        return stats


# ------------------------------------------------------------------ learning
def upsample_post(post: torch.Tensor, conv_hw: tuple[int, int], idx) -> torch.Tensor:
    """Post traces ``(B, C, H, W)`` at conv resolution: NN copy, or unpool at ``idx``."""
    bsz, c, h, w = post.shape
    g = torch.zeros((bsz, c) + tuple(conv_hw), dtype=I64, device=post.device)
    for m in (0, 1):
        for n in (0, 1):
            if idx is None:
                g[:, :, m:2 * h:2, n:2 * w:2] = post
            else:
                g[:, :, m:2 * h:2, n:2 * w:2] = torch.where(idx == 2 * m + n, post,
                                                            torch.zeros_like(post))
    return g


def contrastive_sums(net: Network, traces: list[TorchTraces]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """docs §6.5 in torch: ``G = sum_b (post+ pre+ - post- pre-)``, ``Gb = sum (post+ - post-)``.

    Both phases go through one float64 product over a doubled batch
    (``[pre+; pre-]`` against ``[post+; -post-]``); every term is an integer of
    magnitude ``<= trace_max**2``, so the assertion ``2 B Hc Wc trace_max**2 <
    2**53`` (``2 B trace_max**2`` for FC) makes the sum exact in any order.
    """
    arch = net.arch
    tmax = (1 << net.widths.trace_bits) - 1
    out = []
    for l, spec in enumerate(arch.layers, start=1):
        pre, post = traces[l - 1], traces[l]
        bsz = post.plus.shape[0]
        gb = (post.plus.to(I64) - post.minus.to(I64))
        gb = gb.sum(dim=(0, 2, 3)) if spec.kind == "conv" else gb.sum(dim=0)
        if spec.kind == "conv":
            _, hc, wc = arch.conv_shape(l - 1)
            _assert_exact(contrastive_sum_bound(bsz, hc * wc, tmax), f"layer {l} contrastive sum")
            gp = upsample_post(post.plus.to(I64), (hc, wc), post.idx_plus)
            gm = upsample_post(post.minus.to(I64), (hc, wc), post.idx_minus)
            pre2 = torch.cat([pre.plus, pre.minus]).to(F64)
            g2 = torch.cat([gp, -gm]).to(F64)
            shape = tuple(net.weights_q[l - 1].shape)
            g = _to_int(conv2d_weight(pre2, shape, g2, padding=spec.padding))
        else:
            _assert_exact(contrastive_sum_bound(bsz, 1, tmax), f"layer {l} contrastive sum")
            pre2 = torch.cat([pre.plus.reshape(bsz, -1), pre.minus.reshape(bsz, -1)]).to(F64)
            post2 = torch.cat([post.plus, -post.minus]).to(F64)
            g = _to_int(post2.T @ pre2)
        out.append((g, gb))
    return out


def stochastic_update(param: torch.Tensor, grad: torch.Tensor, lr: tuple[int, int], seed: int,
                      update: int, stream: int, lo: int, hi: int):
    """``saturate(param + stochastic_shift(G * M, K, random_bits(seed, update, stream, i)))``.

    Returns ``(new_param, saturations, changed)``.  A zero ``G`` gives a zero
    change for any random word, so every index can be computed (the core skips them).
    """
    mant, shift = lr
    flat = param.reshape(-1).to(I64)
    g = grad.reshape(-1).to(I64)
    index = torch.arange(flat.numel(), dtype=I64, device=flat.device)
    rnd = ops.random_bits(seed, update, stream, index)
    new = flat + ops.stochastic_shift(g * mant, shift, rnd)
    new_s = ops.saturate(new, lo, hi)
    return (new_s.reshape(param.shape), int((new_s != new).sum()), int((new_s != flat).sum()))


def learning_products(net: Network, batch: int) -> np.ndarray:
    """Trace products formed per layer by one update (both phases)."""
    out = np.zeros(net.arch.n_layers, np.int64)
    for l, spec in enumerate(net.arch.layers):
        n_w = int(np.prod(net.weights_q[l].shape))
        if spec.kind == "conv":
            c, h, w = net.arch.state_shapes()[l]
            positions = h * w if net.hyper.pool == "max" else 4 * h * w
        else:
            positions = 1
        out[l] = 2 * batch * n_w * positions
    return out


def apply_update(net: Network, weights: list, biases: list, grads, update: int,
                 batch: int) -> UpdateStats:
    """docs §6.5: the stochastic-rounding update of every layer, in place on the lists."""
    consts = net.constants()
    n = net.arch.n_layers
    z = [np.zeros(n, np.int64) for _ in range(3)]
    stats = UpdateStats(learning_products(net, batch), *z)
    for l in range(n):
        g, gb = grads[l]
        lc = consts.layers[l]
        weights[l], sat, chg = stochastic_update(weights[l], g, lc.lr_w, net.seed, update,
                                                 2 * (l + 1), *consts.w_range)
        stats.weight_saturations[l], stats.weight_writes[l] = sat, chg
        biases[l], sat_b, _ = stochastic_update(biases[l], gb, lc.lr_b, net.seed, update,
                                                2 * (l + 1) + 1, *consts.b_range)
        stats.bias_saturations[l] = sat_b
    return stats
