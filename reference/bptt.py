"""BPTT baselines on the same architecture and dynamics as :mod:`reference.real`.

The network is unrolled for ``T`` steps of exactly :meth:`RealModel.step`
(synchronous, one step of delay on every edge, clamp, decoder, alpha-upsampling
or max-unpool feedback), from the all-zero state, with the parameters as
autograd leaves.  The loss is the MSE on the output state after the last step,
``1/2 sum_k (s_L(T) - y_k)^2`` averaged over the batch, and training is plain
SGD with the network's per-layer learning rates (``theta_l -= lr_l dL/dtheta_l``).

* **CRNN BPTT** (``model.spiking=False``): exact gradients of the unrolled
  convergent RNN (the clamp's derivative is the indicator of ``[0, 1]``).
* **SNN BPTT** (``model.spiking=True``): the spike ``q = [phi' > theta]`` of the
  predictive sigma-delta encoder is differentiated with a *straight-through*
  estimator by default (``dq/dphi' = 1``; see :func:`reference.real.spike_fn`):
  the quantiser acts as additive noise in the backward pass, the subtractive
  reset carries no gradient, and the gradient flows through the encoder's
  ``(a - (1-lam) a_prev)/lam`` and the receiver's decoder EMA.  The triangle
  surrogate ``max(0, 1 - |phi' - theta|)`` is available with
  ``surrogate='triangle'``.

Max-pool indices are treated as constants (autograd through ``max_pool2d``
routes the forward gradient to the argmax; the feedback unpool uses the same
step's indices as a fixed routing).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .real import RealModel, State, mse, onehot, train_epoch

__all__ = ["BPTTResult", "bptt_gradients", "bptt_train_step", "train_epoch_bptt",
           "truncated_bptt"]


@dataclass
class BPTTResult:
    grads: list          # [(dL/dW_l, dL/db_l)]
    loss: float
    predictions: np.ndarray
    final: State


def _leaves(model: RealModel):
    W = [w.detach().clone().requires_grad_(True) for w in model.W]
    b = [b.detach().clone().requires_grad_(True) for b in model.b]
    return W, b


def bptt_gradients(model: RealModel, x: torch.Tensor, labels, steps: int | None = None,
                   surrogate: str | None = None, state: State | None = None,
                   step_callback=None) -> BPTTResult:
    """``dL/dtheta`` by back-propagation through ``steps`` (default ``t1``) steps.

    ``state``: start from this (detached) state instead of zeros.
    ``step_callback(k, state)`` is called after every forward step (memory
    measurements).
    """
    steps = model.hyper.t1 if steps is None else steps
    W, b = _leaves(model)
    y = onehot(labels, model.arch.num_classes, model.dtype, model.device)
    st = model.init_state(x) if state is None else state.detach()
    with torch.enable_grad():
        for k in range(steps):
            st = model.step(st, params=(W, b), surrogate=surrogate)
            if step_callback is not None:
                step_callback(k, st)
        loss = mse(st.s[-1], y)
        gs = torch.autograd.grad(loss, W + b, allow_unused=True)
    L = model.L
    grads = []
    for l in range(L):
        gw = gs[l] if gs[l] is not None else torch.zeros_like(W[l])
        gb = gs[L + l] if gs[L + l] is not None else torch.zeros_like(b[l])
        grads.append((gw.detach(), gb.detach()))
    preds = st.s[-1].detach().argmax(dim=1).cpu().numpy()
    return BPTTResult(grads, float(loss.detach()), preds, st.detach())


def bptt_train_step(model: RealModel, x: torch.Tensor, labels, steps: int | None = None,
                    surrogate: str | None = None) -> BPTTResult:
    """One SGD step with the BPTT gradient (same per-layer LRs as EP)."""
    res = bptt_gradients(model, x, labels, steps, surrogate)
    model.apply(res.grads)
    return res


def train_epoch_bptt(model: RealModel, x: torch.Tensor, labels, epoch: int, seed: int = 0,
                     steps: int | None = None, surrogate: str | None = None,
                     on_batch=None) -> tuple[float, float]:
    """One epoch of BPTT training with the core's batch order
    (:func:`reference.real.train_epoch`); ``(train error on the fly, mean loss)``."""
    def step(xb, yb):
        r = bptt_train_step(model, xb, yb, steps, surrogate)
        return r.predictions, r.loss
    return train_epoch(model, x, labels, epoch, seed, step_fn=step, on_batch=on_batch)


def truncated_bptt(model: RealModel, start: State, labels, max_k: int) -> list:
    """Cumulative BPTT gradients truncated to the last ``K`` steps, ``K = 1..max_k``.

    For each ``K`` the net runs ``K`` steps from the detached ``start`` (a free
    fixed point) and back-propagates the final MSE only through those steps
    (Laborieux's ``check_gdu``).  Returns ``[grads_K]``, ``K = 1..max_k``.
    """
    out = []
    for k in range(1, max_k + 1):
        r = bptt_gradients(model, start.s[0], labels, steps=k, state=start)
        out.append(r.grads)
    return out
