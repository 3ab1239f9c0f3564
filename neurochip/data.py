"""Datasets as uint8 images ``(N, C, H, W)`` with integer labels.

The default dataset is scikit-learn's bundled 8x8 handwritten digits (real
data, no download).  MNIST and Fashion-MNIST are read from IDX files.
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset
from .errors import DataError, UserError
from .idx import load_idx_dataset

DATASETS = ("digits", "mnist", "fashion-mnist")


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's digits (1797 images, 8x8, values 0..16), fixed 80/20 split."""
    from sklearn.datasets import load_digits as _load
    d = _load()
    x = d.images.astype(np.uint8).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    order = np.random.Generator(np.random.PCG64(split_seed)).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    te, tr = order[:n_test], order[n_test:]
    return Dataset("digits", x[tr], y[tr], x[te], y[te], 16)


def load_dataset(name: str, data_dir: str | None = None, download: bool = False) -> Dataset:
    """``download=True`` (the CLI's ``--download``) fetches missing IDX files."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        return load_idx_dataset(name, data_dir, download=download)
    raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def default_dataset(input_shape) -> str:
    """The dataset a network with input shape ``(C, H, W)`` reads when none is named.

    8x8 images are scikit-learn's digits; any other size is taken as MNIST.
    """
    return "digits" if tuple(input_shape[1:]) == (8, 8) else "mnist"


def add_test_image_flags(parser) -> None:
    """``--dataset``, ``--data-dir`` and ``--samples``: the flags of a command that reads
    test images with :func:`load_test_images` (``parser``: an argparse parser)."""
    parser.add_argument("--dataset",
                        help="digits | mnist | fashion-mnist (default: from the input shape)")
    parser.add_argument("--data-dir", help="folder with the IDX .gz files")
    parser.add_argument("--samples", type=int, default=None,
                        help="test images, from the first (default all)")


def load_test_images(net, dataset: str | None = None, data_dir: str | None = None,
                     samples: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The first ``samples`` test images of ``dataset`` as ``net`` reads them.

    Returns ``(x_fp, labels, dataset)``: ``x_fp`` int64 ``(N, C*H*W)`` pixels
    quantised to ``net.widths.state_bits``, ``labels`` int64 ``(N,)`` and the
    dataset's name (default: :func:`default_dataset` of the net's input shape).
    ``samples`` None: every test image; outside ``1..len(test)``: a UserError.
    """
    dataset = dataset or default_dataset(net.arch.input_shape)
    d = load_dataset(dataset, data_dir)
    n = len(d.test_y) if samples is None else samples
    if not 1 <= n <= len(d.test_y):
        raise UserError(f"--samples must be in 1..{len(d.test_y)} (the test images of "
                        f"{dataset}), got {n}")
    return (d.quantised(d.test_x[:n], net.widths.state_bits),
            np.asarray(d.test_y[:n], np.int64), dataset)
