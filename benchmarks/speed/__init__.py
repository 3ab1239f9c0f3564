"""The speed benchmark of neurochip, one module per section.

Run it as ``python benchmarks/speed.py [flags]`` (or ``python -m benchmarks.speed``).
Everything it compares runs in one process (section 0: in one child process per OpenMP
wait policy), interleaved, alternating the order, and each figure is a median, because the
machine is shared:

0. :mod:`.headline`: the core against a dense float32 spiking EP in PyTorch (the
   real-valued model), per training sample, on ``mnist-small`` and ``paper-mnist``, in one
   child process per OpenMP wait policy (PyTorch's best one is the headline); the
   published peer code's figures quoted with their source;
1. :mod:`.mirror`: the core against the exact PyTorch mirror (an exactness tool);
2. :mod:`.lava`: a small network in the Lava mapping against the core;
3. :mod:`.scaling`: time per sample against synaptic events;
4. :mod:`.threads`: a minibatch on 1 and on 2 Numba threads;
5. :mod:`.startup`: start-up of ``python -m neurochip.run --bits 8``;
6. :mod:`.peers`: the core on the spec's calibration architectures;
7. :mod:`.baseline`: before / after against a git revision (``--baseline REV``);
8. :mod:`.ceiling`: the paper network's event rate against the scatter kernel's ceiling.

:mod:`.cli` holds the flags and writes ``--json``; :mod:`.common` the shared helpers.
"""
import os

# OpenMP's wait policy, set before torch or Numba start.  PASSIVE (threads sleep as soon as
# they wait) keeps the sections' interleaved runs from stealing each other's CPUs on a
# shared machine (peers.md: PyTorch's spinning threads went from 45-50 to 215 ms per sample
# at load 4), but it slows PyTorch's many small operations several-fold on a quiet one, so
# the headline (section 0) measures each policy in its own process.  "default" means
# libgomp's own default (the variable unset).
if os.environ.get("OMP_WAIT_POLICY") is None:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
elif os.environ["OMP_WAIT_POLICY"].lower() == "default":
    del os.environ["OMP_WAIT_POLICY"]
