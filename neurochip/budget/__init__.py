"""Hardware-budget reports: counts from the core, NeuroBench metrics, chip fit and prices,
EP vs BPTT training memory.  Entry points: :func:`neurochip.budget.report.build_report`,
``python -m neurochip.budget``."""
