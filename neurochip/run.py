"""``python -m neurochip.run``: train and evaluate a spiking conv EP network in fixed point.

The command lives in :mod:`neurochip.cli` (parser, validation, outputs, main);
this module is its stable name.

Progress goes to stderr, results to stdout; ``--json`` writes every figure.

Reliability contract (tests/neurochip/cli/test_errors.py, tests/neurochip/cli/test_reliability.py):

* Bad input (a flag out of range, an unknown or malformed name, data of the
  wrong shape or with labels the network cannot represent, a configuration
  whose integers could overflow 64 bits, an unusable output path, a bad
  checkpoint) gives one line on stderr and exit code 2.  Everything is
  checked before any work, outputs are written only at the end and
  atomically, so no existing file is overwritten or left half-written.
* ``--save``/``--resume`` checkpoint the complete training state (weights,
  update counter, position in the epoch, the epoch's partial sums, history,
  counts) every ``--checkpoint-every`` updates and at every epoch end; a run
  killed at any moment (even SIGKILL) and continued with ``--resume`` ends
  with bit-identical weights and the same figures.
* Ctrl-C (SIGINT) or SIGTERM during training finishes the current minibatch,
  saves a checkpoint and exits with 128 + signal (130 for Ctrl-C) and one
  line naming the checkpoint; a second Ctrl-C before the minibatch ends aborts at
  once, and once the final save has begun further signals are ignored.
* ``--val-split N``: N training images (drawn from the seed) are held out; each
  epoch reports their error, the checkpoint keeps the best-on-validation
  weights beside the latest ones (``--resume`` continues the latest, ``--load``
  evaluates the best) and the run reports the best.  ``--lr-schedule`` and
  ``--weight-headroom`` are part of the training state, resumed exactly.
  ``--resume`` with a larger ``--epochs`` (or another schedule) continues a
  run under a longer plan only where no epoch already trained changes its
  rate factor (e.g. 20 constant epochs continued as ``--lr-schedule step
  --lr-step-epochs 20``): the result is the longer plan's uninterrupted run.
* Learning health: a run whose learning stopped (output layer silent in both
  nudged phases, every contrastive sum 0), whose weights pile up at the range
  ends, or whose hidden activity ran away (a layer above twice the free-phase
  spikes per validation sample of its best-on-validation epoch) says so in one
  stderr warning line, the summary and ``--json`` ``learning_health``
  (:mod:`neurochip.health`).
* ``--debug`` or ``NEUROCHIP_DEBUG=1``: every register is checked against its
  declared width after each batch and update (:mod:`neurochip.debug`).
* ``seconds`` in the JSON is the wall time of the whole command, from the
  process start (interpreter start-up, imports and compilation included).
"""
from __future__ import annotations

import sys

from .cli.main import (EXIT_INTERRUPTED, EXIT_USAGE, PROCESS_T0, check_headroom, main,  # noqa: F401
                       run)
from .cli.parser import build_parser  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
