"""PyTorch references for neurochip.

* :mod:`reference.mirror` -- the exact, dense, batched PyTorch execution of
  docs/numerics.md (CPU or CUDA), integer for integer equal to the Numba core,
  with its own torch EP update; :mod:`reference.ops` -- the numerics rules
  callable on tensors.
* :mod:`reference.backend` -- ``TorchBackend``, the mirror behind the trainer's
  backend interface (``make_backend(net, 'torch', device=...)``).
* :mod:`reference.check` -- ``python -m reference.check``: core vs mirror,
  differing integers per layer and phase.
* :mod:`reference.distributed` -- data-parallel training over
  ``torch.distributed`` (all-reduced integer contrastive sums).
* :mod:`reference.real`, :mod:`reference.bptt` -- the real-valued model and
  BPTT baselines.
* :mod:`reference.torch_port` -- ``to_torch(net)``: the free phase as a stepwise
  torch module NeuroBench hooks (the core's spikes exactly);
  :mod:`reference.neurobench_harness` -- NeuroBench's own ``Benchmark`` on it,
  next to ``neurochip.budget``.

Nothing is imported here, so ``import reference`` stays cheap.
"""
