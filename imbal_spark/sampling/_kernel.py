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

#: BLAS threads per task: Spark already runs one task per core.
_BLAS_THREADS = 1
#: Above this many features brute force beats trees; the fast path is used from this many rows.
_FAST_MIN_FEATURES = 16
_FAST_MIN_ROWS = 4096
#: Extra float32 candidates per row re-ranked in float64 by the fast path.
_FAST_MARGIN = 8
#: Columns sampled per row for the fast path's candidate threshold.
_FAST_SUBSET = 8192
#: float32 distance values per chunk of the fast path (64 MiB).
_FAST_CHUNK_VALUES = 1 << 24


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
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    with threadpool_limits(limits=_BLAS_THREADS):
        return nn.kneighbors(X, return_distance=False)[:, 1:]


def fast_neighbours(X: np.ndarray, k: int) -> np.ndarray:
    """The same (n, k) table as :func:`neighbours` for large high-dimensional groups, faster.

    Above ~15 dimensions only brute force is exact, one distance per pair of rows, so the pair
    loop is kept as lean as numpy allows: one float32 GEMM per chunk of query rows gives
    ``|x|^2 - 2 q.x`` (the squared distance less ``|q|^2``) for centred rows; a threshold from an
    evenly strided subset of the columns (its ``m``-th smallest value bounds the row's ``m``-th
    smallest overall) and one vectorised comparison keep ~``m * stride`` candidates per row
    instead of a full ``argpartition``; the ``m = k + 1 + margin`` best of them by float32 value
    are re-ranked by exact float64 distances (ties by index) and the first, the row itself, is
    dropped as imbalanced-learn drops column 0. A true neighbour is lost only if float32 rounding
    moves it past ``margin`` other rows, far below the gaps between neighbour distances.
    """
    from threadpoolctl import threadpool_limits

    n = X.shape[0]
    m = min(k + 1 + _FAST_MARGIN, n)
    Xc = X - X.mean(axis=0)
    X32 = np.ascontiguousarray(Xc, dtype=np.float32)
    Xa = np.hstack([X32, (X32 * X32).sum(axis=1, keepdims=True)])  # [x, |x|^2]
    Qa = np.hstack([-2.0 * X32, np.ones((n, 1), np.float32)])      # [-2q, 1]
    stride = max(1, n // _FAST_SUBSET)
    out = np.empty((n, k), dtype=np.intp)
    chunk = max(16, min(1024, _FAST_CHUNK_VALUES // max(n, 1)))
    with threadpool_limits(limits=_BLAS_THREADS):
        for s in range(0, n, chunk):
            G = Qa[s:s + chunk] @ Xa.T
            q = G.shape[0]
            if m < n:
                thr = np.partition(G[:, ::stride], m - 1, axis=1)[:, m - 1]
                flat = np.flatnonzero(G <= thr[:, None])  # 2-D nonzero is ~10x slower
                r, c = np.divmod(flat, n)
                o = np.lexsort((c, G.ravel()[flat], r))
                r, c = r[o], c[o]
                pos = np.arange(len(r)) - np.searchsorted(r, np.arange(q))[r]
                sel = pos < m
                cand = np.empty((q, m), dtype=np.intp)
                cand[r[sel], pos[sel]] = c[sel]
            else:
                cand = np.tile(np.arange(n), (q, 1))
            diff = Xc[cand] - Xc[s:s + chunk, None, :]
            d = np.einsum("ijk,ijk->ij", diff, diff)
            ranked = np.take_along_axis(cand, np.lexsort((cand, d), axis=1), axis=1)
            out[s:s + chunk] = ranked[:, 1:k + 1]
    return out


def group_neighbours(X: np.ndarray, k: int) -> np.ndarray:
    """k-NN table of a group of a split class (no parity to keep): the fast path for large
    high-dimensional groups, scikit-learn's (KD-tree in low dimension) otherwise."""
    if X.shape[1] >= _FAST_MIN_FEATURES and X.shape[0] >= _FAST_MIN_ROWS:
        return fast_neighbours(X, k)
    return neighbours(X, k)


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
