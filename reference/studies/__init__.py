"""Agreement studies of the real-valued reference (``python -m reference.studies.X``).

* :mod:`.gradients`    EP vs BPTT gradients (algorithm.md §8), CRNN and spiking, avg/max pool;
* :mod:`.quantisation` integer core vs real-valued model as the bit widths change;
* :mod:`.memory`       training memory of EP vs BPTT as the number of steps grows.

Results and exact commands: ``docs/reference-studies.md``.
"""
