"""reference.bptt_memory: the measured BPTT memory the budget report can use."""
import pytest

pytest.importorskip("torch")

from neurochip import registry  # noqa: E402
from neurochip.budget import memory as mem  # noqa: E402
from neurochip.network import Hyper, Network, Widths  # noqa: E402
from reference.bptt_memory import measure_bptt_k  # noqa: E402


def test_measure_bptt_k():
    net = Network.create("1x8x8:f64-f10", Hyper(beta=0.5, epsilon=0.5, lam=0.5, alpha=0.5, theta=0.5,
                                                t1=14, t2=5, lrs=(0.1, 0.1), batch_size=4),
                         Widths(weight_bits=8), seed=1)
    m = measure_bptt_k(net)
    assert m is not None and 1.0 <= m["k"] <= 20.0
    big = mem.training_memory(net, batch=2, t_bptt=5, k_bptt=m["k"], k_source="measured")
    assert big["k_source"] == "measured" and big["bptt_bytes_fp32"] > 0


def test_registered_as_measurement():
    assert registry.get("neurochip.measurements", "bptt_k") is measure_bptt_k
