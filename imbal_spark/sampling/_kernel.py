"""The SMOTE kernel: plain numpy + scikit-learn, no Spark.

One call handles one group of rows of one class. With ``random_state=numpy.random.RandomState(R)``
and the class's rows in imbalanced-learn's order, the output equals
``imblearn.over_sampling.SMOTE(k_neighbors=k, random_state=R)``'s new rows for that class bit for
bit: the same ``NearestNeighbors(k+1)`` (self dropped), the same ``randint`` over the flattened
(row, neighbour) table, then the same ``uniform`` steps and the same arithmetic.

The kernel is split in two so that SMOTE-NC can reuse the draw: :func:`draw` returns which base
row, which neighbour and which step each new row uses; :func:`interpolate` applies them to the
numeric matrix. Other columns (categorical ones, for SMOTE-NC) can be filled from the same
``rows``/``neighbours`` indices by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Above this many rows a group's k-NN index follows scikit-learn's "auto" choice but with the
#: work kept on one thread (Spark already runs one task per core).
_BLAS_THREADS = 1


@dataclass
class Draw:
    rows: np.ndarray        # index of the base row of each new row
    neighbours: np.ndarray  # index (into the same group) of the neighbour used
    steps: np.ndarray       # u in [0, 1), shape (n, 1)
    nn: np.ndarray          # the (n_rows, k) neighbour table, self excluded


def neighbours(X: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's k nearest other rows: imbalanced-learn's
    ``NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)[:, 1:]``.

    scikit-learn's ``algorithm='auto'`` picks a KD-tree for low-dimensional data and brute force
    (BLAS) above 15 features, where trees stop pruning; keeping that choice is also what keeps
    neighbour order, and so parity, identical to imbalanced-learn's.
    """
    from sklearn.neighbors import NearestNeighbors

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        threadpool_limits = None
    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    if threadpool_limits is None:
        return nn.kneighbors(X, return_distance=False)[:, 1:]
    with threadpool_limits(limits=_BLAS_THREADS):
        return nn.kneighbors(X, return_distance=False)[:, 1:]


def draw(nn: np.ndarray, n_new: int, random_state: np.random.RandomState) -> Draw:
    """imbalanced-learn's ``_make_samples`` draw order: ``randint`` over the flattened
    neighbour table, then ``uniform`` steps."""
    k = nn.shape[1]
    idx = random_state.randint(low=0, high=nn.size, size=n_new)
    steps = random_state.uniform(size=n_new)[:, np.newaxis]
    rows = np.floor_divide(idx, k)
    cols = np.mod(idx, k)
    return Draw(rows=rows, neighbours=nn[rows, cols], steps=steps, nn=nn)


def interpolate(X: np.ndarray, d: Draw) -> np.ndarray:
    """``x + u * (x_nn - x)`` (the same expression imbalanced-learn evaluates)."""
    diffs = X[d.neighbours] - X[d.rows]
    return X[d.rows] + d.steps * diffs


def smote(X: np.ndarray, n_new: int, k_neighbors: int, random_state) -> tuple[np.ndarray, Draw]:
    """New rows for one group: ``(X_new, draw)``.

    ``X`` is the group's (n, d) float64 matrix in canonical order; ``random_state`` an int or a
    ``numpy.random.RandomState`` (an int gives a fresh ``RandomState``, like imbalanced-learn).
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n < k_neighbors + 1:
        raise ValueError(f"a SMOTE group needs at least k_neighbors + 1 = {k_neighbors + 1} rows, got {n}")
    rs = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    if n_new <= 0:
        empty = np.empty(0, dtype=np.intp)
        return np.empty((0, X.shape[1])), Draw(empty, empty, np.empty((0, 1)), np.empty((n, k_neighbors), np.intp))
    nn = neighbours(X, k_neighbors)
    d = draw(nn, n_new, rs)
    return interpolate(X, d), d


def group_random_state(seed: int, class_key: int, group: int | None) -> np.random.RandomState:
    """The RandomState of one group. A class in one group (``group=None``) gets
    ``RandomState(seed)`` exactly as imbalanced-learn gives every class; a class split into groups
    gets one stream per (seed, class, group), never one that depends on task order."""
    if group is None:
        return np.random.RandomState(seed)
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32, int(class_key), int(group)])
    return np.random.RandomState(ss.generate_state(4))
