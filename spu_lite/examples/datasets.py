"""Small data sets for the tutorials and tests; nothing is downloaded.

- breast_cancer(): sklearn's bundled Wisconsin breast-cancer data, min-max
  normalised over the whole matrix, 80/20 split with random_state 42 (as in
  SecretFlow SPU's tutorial).
- digits_28x28(): sklearn's bundled 8x8 digits, upsampled x3 (nearest neighbour) to
  24x24 and zero-padded to 28x28, scaled to [0, 1]: an MNIST-shaped stand-in.
- load_idx() / load_mnist(): readers for the standard MNIST idx files (optionally
  gzipped) at a path the user gives.
"""
from __future__ import annotations

import gzip
import os
import struct
from typing import Tuple

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def breast_cancer(test_size: float = 0.2, random_state: int = 42):
    """(x_train, x_test, y_train, y_test); y as float32 column vectors."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.min()) / (x.max() - x.min())
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=random_state)
    col = lambda a: a.astype(np.float32).reshape(-1, 1)
    return x_tr.astype(np.float32), x_te.astype(np.float32), col(y_tr), col(y_te)


def digits(test_size: float = 0.25, random_state: int = 0):
    """sklearn's 8x8 digits: (x_train, x_test, y_train, y_test), images flattened to
    [n, 64] in [0, 1] (float32), labels int32, a stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    return train_test_split((x / 16.0).astype(np.float32), y.astype(np.int32),
                            test_size=test_size, stratify=y, random_state=random_state)


def digits_28x28(test_size: float = 0.2, random_state: int = 0):
    """An MNIST-shaped stand-in: the digits upsampled x3 and padded to 28x28.
    (x_train, x_test, y_train, y_test): images [n, 784] in [0, 1], labels int."""
    def mnist_shaped(x):
        up = np.kron(x.reshape(-1, 8, 8), np.ones((1, 3, 3), np.float32))   # 8x8 -> 24x24
        return np.pad(up, ((0, 0), (2, 2), (2, 2))).reshape(len(x), -1)      # -> 28x28
    x_tr, x_te, y_tr, y_te = digits(test_size, random_state)
    return mnist_shaped(x_tr), mnist_shaped(x_te), y_tr, y_te


def load_idx(path: str) -> np.ndarray:
    """Read an idx file (the MNIST format), gzipped if the name ends in .gz."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an idx file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown idx element type 0x{code:02x}")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[code])
    body = data[4 + 4 * ndim:]
    n = int(np.prod(dims)) if dims else 1
    if len(body) != n * dtype.itemsize:
        raise ValueError(f"{path}: expected {n} elements of {dtype}, file has {len(body)} bytes")
    return np.frombuffer(body, dtype).astype(dtype.newbyteorder("=")).reshape(dims)


def save_idx(path: str, array: np.ndarray) -> None:
    """Write an idx file (uint8 / int32 / float32 arrays)."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
    a = np.asarray(array)
    head = bytes([0, 0, codes[a.dtype], a.ndim]) + struct.pack(">" + "I" * a.ndim, *a.shape)
    body = a.astype(a.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(head + body)


def load_mnist(directory: str, kind: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """Images [n, 784] scaled to [0, 1] and int labels from the standard file names
    (`train-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`, ...)."""
    prefix = "train" if kind == "train" else "t10k"

    def find(stem):
        for name in (stem, stem + ".gz"):
            p = os.path.join(directory, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(f"{stem}[.gz] not found in {directory}")
    images = load_idx(find(f"{prefix}-images-idx3-ubyte"))
    labels = load_idx(find(f"{prefix}-labels-idx1-ubyte"))
    if len(images) != len(labels):
        raise ValueError("image and label files disagree in length")
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, labels.astype(np.int64)
