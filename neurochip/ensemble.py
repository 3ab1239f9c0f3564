"""Ensembles of trained networks: the members' output states summed, one prediction.

An ensemble of K networks is K networks on a chip (the sum of their cores, synapses and
spikes). Each member runs its own free phase on the same images; the ensemble's prediction
is the first maximum of the sum over members of their output states ``s`` after the free phase:
one network's rule (docs/numerics.md) applied to the sum, in integers. Every member must hold
its states on the same scale (``state_bits``) and have the same classes, so the sum means
the same thing for each.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from .dataset import Dataset
from .errors import ArchitectureError, DataError
from .network import Network
from .trainer import mse_loss
from .training import Evaluation, output_states, split_arrays


class EnsembleEvaluation(NamedTuple):
    """``ensemble``: the summed states' :class:`~neurochip.training.Evaluation` (its loss is the
    MSE of the members' mean state); ``members``: each member's own, in the order given."""

    ensemble: Evaluation
    members: list[Evaluation]


def check_members(nets: Sequence[Network]) -> None:
    """Refuse members whose output states cannot be summed (one-line ArchitectureError)."""
    if not nets:
        raise ArchitectureError("an ensemble needs at least one network")
    first = nets[0]
    for i, net in enumerate(nets[1:], start=1):
        if net.arch.num_classes != first.arch.num_classes:
            raise ArchitectureError(f"member {i} has {net.arch.num_classes} classes, member 0 has "
                                    f"{first.arch.num_classes}")
        if net.widths.state_bits != first.widths.state_bits:
            raise ArchitectureError(f"member {i} holds its states in {net.widths.state_bits} bits, member 0 "
                                    f"in {first.widths.state_bits}: their output states are not on one scale")


def predict(states: Sequence[np.ndarray]) -> np.ndarray:
    """The ensemble's predicted classes, int64 ``(N,)``: the first maximum of each row of the
    sum of ``states`` (each int64 ``(N, classes)``, one per member)."""
    return _first_maximum(np.sum(np.stack([np.asarray(s, np.int64) for s in states]), axis=0))


def _first_maximum(total: np.ndarray) -> np.ndarray:
    """The index of each row's first maximum, int64 ``(N,)``: one network's prediction rule."""
    return np.argmax(total, axis=1).astype(np.int64)


def _evaluation(net: Network, s_free: np.ndarray, predictions: np.ndarray, labels: np.ndarray) -> Evaluation:
    k = net.arch.num_classes
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (np.asarray(labels, np.int64), predictions), 1)
    return Evaluation(int((predictions != labels).sum()) / len(labels), mse_loss(net, s_free, labels),
                      confusion)


def evaluate_ensemble(nets: Sequence[Network], data: Dataset, split: str = "test", *,
                      backend="numba", batch_size: int = 256, **backend_options) -> EnsembleEvaluation:
    """Free-phase error of the ensemble ``nets`` and of each member on ``data``'s ``split``
    ('test' or 'train'); one free phase per member and image."""
    check_members(nets)
    _, labels = split_arrays(data, split)
    labels = np.asarray(labels, np.int64)
    if not len(labels):
        raise DataError(f"dataset {data.name} has no {split} images to evaluate")
    states, members = [], []
    for net in nets:
        s_free, preds = output_states(net, data, split, backend=backend, batch_size=batch_size,
                                      **backend_options)
        states.append(s_free)
        members.append(_evaluation(net, s_free, preds, labels))
    total = np.sum(np.stack(states), axis=0)                   # summed once: predictions and loss
    return EnsembleEvaluation(_evaluation(nets[0], total / len(nets), _first_maximum(total), labels), members)
