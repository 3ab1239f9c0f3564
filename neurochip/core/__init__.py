"""The Numba integer core: event-driven simulation of EP training samples.

The kernels follow ``docs/numerics.md`` step for step: every integer rule comes
from :mod:`neurochip.numerics`, the neuron's update sequence from
:mod:`neurochip.neuron`, the fused avg-pool kernel from :mod:`neurochip.pooling`.
One job per file:

* :mod:`.meta` - column and slot numbers of the per-layer ``meta`` table and the constants vector;
* :mod:`.layout` - :class:`CoreLayout`: where each neuron lives in a sample's flat vector
  (conv maps channel-last), and the narrowest exact table / accumulator dtypes;
* :mod:`.tables` - the weight tables, biases and constants derived from a network;
* :mod:`.scatter` - kernels adding a step's spikes through the tables into the accumulators;
* :mod:`.kernels` - the per-sample simulation (scatter, neuron update, encoder, phases)
  and the batch kernel (one sample per thread);
* :mod:`.net` - :class:`CoreNet` (host API) and :class:`BatchResult`.

Speed without changing an integer (docs/speed.md): runs of contiguous weights per
spike, precomputed scatter plans, grouped scatter, int16 tables and int32
accumulators when a static bound proves them exact, a vectorised neuron update, and
scratch allocated once per sample.
"""
from __future__ import annotations

from ..kinds import (COUNT_NAMES, K_ACTIVE, K_EVENTS_FB, K_EVENTS_FWD, K_SAT_DEC,  # noqa: F401
                     K_SAT_INPUT, K_SAT_PSI, K_SPIKES, K_UPDATES, N_COUNTS, PHASES, REC_DEC,
                     REC_ENC_PREV, REC_PSI, REC_S)
from .layout import CoreLayout  # noqa: F401
from .net import BatchResult, CoreNet  # noqa: F401
from .tables import constants_vector, neuron_biases, pack_index_maps, pack_weights  # noqa: F401
