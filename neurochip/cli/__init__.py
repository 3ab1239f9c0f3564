"""The command line ``python -m neurochip.run`` (also ``neurochip``), one job per module.

* :mod:`.parser` -- the flags, their groups, help and limits;
* :mod:`.validation` -- every check before any work (flags, outputs, the
  network plan, the data, the integer bounds);
* :mod:`.outputs` -- progress bars, the summary, the ``--json`` record and the
  files, each written atomically;
* :mod:`.main` -- the flow: plan, data, backend, training loop with
  checkpoints and signals, final evaluation, outputs.
"""
