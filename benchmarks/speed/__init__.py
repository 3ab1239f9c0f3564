"""The speed benchmark of neurochip, one module per section.

Run it as ``python benchmarks/speed.py [flags]`` (or ``python -m benchmarks.speed``).
Everything it compares runs in one process, interleaved, alternating the order, and each
figure is a median, because the machine is shared:

0. :mod:`.headline`: the core against a dense float32 spiking EP in PyTorch (the
   real-valued model), per training sample, on ``mnist-small`` and ``paper-mnist``; the
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
