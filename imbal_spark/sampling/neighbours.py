"""How much of SMOTE's neighbourhood survives the grouping: recall@k on a sample of rows.

A row's k nearest neighbours within its group's index are exactly those of its global k nearest
neighbours that the index holds (plus stand-ins for the others), so recall@k of the in-group
search is the share of a row's exact global k nearest neighbours (self excluded) that are in its
group's index: its group's own rows or its halo; where the group's rows search only the cells
nearest them (``model.probe_cells``), in one of the cells the row probes. The sample's
exact global neighbours come from a distributed brute-force search riding on the grouping's
counting pass: every partition of the class scores the sample against its rows and keeps its k+1
best per sample row; the partitions' candidates are merged in a tree on the executors, keeping
the k+1 best overall. Only the sample (a few hundred rows) and those candidates reach the driver.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Extra candidates per sample row kept by the GEMM prefilter before exact re-ranking.
_MARGIN = 8


def top_candidates(S: np.ndarray, X: np.ndarray, k: int, all_candidates: bool = False,
                   bound: np.ndarray | None = None):
    """For each sample row, the k+1 nearest rows of ``X``: (sample id, distance, row of X) arrays.

    A float64 GEMM (``|x|^2 - 2 s.x`` on centred rows) picks ``k + 1 + margin`` candidates per
    sample row; their exact squared distances (direct differences, so a row's distance to itself
    is 0) pick the ``k + 1`` (``all_candidates``: all of them are returned, for the caller to pick
    with its own tie-break). ~1 ns a pair instead of ~80 for direct differences over all rows.
    ``bound`` (a squared distance per sample row): a sample row none of whose rows of ``X`` can be
    as near (by the GEMM, with a margin far above its rounding) gets no candidates; the others get
    the same as without it."""
    n = X.shape[0]
    if n == 0:
        return np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
    m = min(k + 1, n)
    c = min(m + _MARGIN, n)
    rows = np.arange(len(S))
    if c < n:
        from ._kernel import one_blas_thread

        mu = X.mean(axis=0)
        Xc = X - mu
        x2 = (Xc * Xc).sum(axis=1)
        with one_blas_thread():  # Spark already runs one task per core
            G = (S - mu) @ Xc.T
        G *= -2.0  # in place: x2 - 2 s.x, bit for bit
        G += x2[None, :]
        if bound is not None:
            s2 = ((S - mu) ** 2).sum(axis=1)  # G + s2 is the squared distance, up to rounding
            # not "<=": a row the GEMM cannot rank (an overflow gives NaN) stays live, as without a bound
            live = ~(G.min(axis=1) + s2 > bound + 1e-8 * (x2.max() + s2))
            rows, S, G = rows[live], S[live], G[live]
        cand = np.argpartition(G, c - 1, axis=1)[:, :c]
        del G
    else:
        cand = np.tile(np.arange(n), (len(S), 1))
    diff = X[cand] - S[:, None, :]
    D = np.einsum("ijk,ijk->ij", diff, diff)
    if m < c and not all_candidates:
        pick = np.argpartition(D, m - 1, axis=1)[:, :m]
        cand, D = np.take_along_axis(cand, pick, 1), np.take_along_axis(D, pick, 1)
    sid = np.repeat(rows, cand.shape[1])
    return sid, D.ravel(), cand.ravel()


def in_index(model, X: np.ndarray, rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """1 where row ``rows[i]`` of ``X`` is in the k-NN index (own rows or halo) of ``groups[i]``."""
    r, g, _ = model.members(X)
    G = max(int(model.n_groups), 1)
    return np.isin(rows * G + groups, r * G + g).astype(np.int64)


def probed(model, S: np.ndarray, sid: np.ndarray, X: np.ndarray, groups: np.ndarray, hit: np.ndarray):
    """``hit`` (1 where candidate ``X[i]`` is in the index of sample row ``S[sid[i]]``'s group
    ``groups[i]``) kept only where that group's probed search (``model.probe_cells``) reaches it:
    the candidate's cell is one the sample row probes, as the kernel decides it."""
    from ._kernel import nearest_cells

    hit = np.asarray(hit).copy()
    for g, (C, n_probe) in getattr(model, "probe_cells", {}).items():
        sel = np.flatnonzero((groups == g) & (hit > 0))
        if sel.size:
            cell, _ = nearest_cells(X[sel], C)
            _, P = nearest_cells(S[sid[sel]], C, nprobe=n_probe)
            hit[sel] = (P == cell[:, None]).any(axis=1)
    return hit


def recall_from_candidates(sid, dist, hit, k) -> float:
    """Mean over sample rows of (# of its k nearest others in its group's index) / k."""
    df = pd.DataFrame({"sid": sid, "d": dist, "g": hit}).sort_values(["sid", "d", "g"], kind="mergesort")
    total = 0.0
    n = 0
    for s, part in df.groupby("sid", sort=True):
        nbrs = part["g"].to_numpy()[1:k + 1]  # the first (distance 0) is the row itself
        if len(nbrs):
            total += nbrs.sum() / k
            n += 1
    return total / n if n else float("nan")


def best_candidates(sid, d, X, m: int):
    """Of candidate rows ``X`` (squared distance ``d`` to sample row ``sid``), the ``m`` nearest
    of each sample row: (sid, d, X) sorted by (sid, d, values). Rows at equal distance are told
    apart by their values, never by arrival order, so the choice does not depend on partitioning
    (copies of one row are interchangeable)."""
    order = np.lexsort([X[:, j] for j in reversed(range(X.shape[1]))] + [d, sid])
    sid, d = sid[order], d[order]
    start = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]]) if len(sid) else np.empty(0, np.int64)
    rank = np.arange(len(sid)) - np.repeat(start, np.diff(np.r_[start, len(sid)]))
    keep = order[rank < m]
    return sid[rank < m], d[rank < m], X[keep]


class RecallProbe:
    """recall@k gathered during another pass over the class (the counting pass of the grouping),
    so it costs no pass of its own: each partition keeps, for every sample row, its k+1 nearest
    rows (their values: which index holds them is known only once the groups and halos are
    planned); partitions' candidates are merged by :meth:`merge`; :meth:`recall` scores them
    against the final grouping model."""

    def __init__(self, S: np.ndarray, k: int):
        self.S = np.asarray(S, dtype=np.float64)
        self.k = int(k)

    def empty(self):
        d = self.S.shape[1]
        return np.empty(0, np.int64), np.empty(0), np.empty((0, d))

    def scan(self, X: np.ndarray, best):
        """``best`` updated with the rows ``X`` of one batch. Distances are measured on rows
        scaled by the power of two that fits the sample (one for every batch, so they compare
        across partitions; exact, see :func:`._kernel.pow2_scaled`): no square overflows."""
        from ._kernel import pow2_scaled

        sid, dist, idx = top_candidates(pow2_scaled(self.S), pow2_scaled(X, like=self.S), self.k,
                                        all_candidates=True, bound=self.bounds(best))
        if not len(sid):
            return best
        return self.merge(best, (sid, dist, X[idx]))

    def bounds(self, best) -> np.ndarray:
        """Each sample row's (k+1)-th squared distance in ``best`` (inf while it has fewer): a
        candidate farther than that cannot enter the merge, so a batch need not rank it."""
        sid, d, _ = best
        n = np.bincount(sid, minlength=len(self.S))
        tau = np.full(len(self.S), np.inf)
        full = n >= self.k + 1
        tau[full] = d[np.cumsum(n)[full] - 1]  # best is sorted by (sample row, distance, values)
        return tau

    def merge(self, a, b):
        return best_candidates(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]),
                               np.concatenate([a[2], b[2]]), self.k + 1)

    def recall(self, model, best) -> dict:
        sid, dist, Xc = best
        if len(self.S) == 0:
            return {"recall_at_k": None, "k": self.k, "sample_rows": 0}
        own = model.assign(self.S)[sid]
        hit = in_index(model, Xc, np.arange(len(Xc)), own) if len(Xc) else sid
        hit = probed(model, self.S, sid, Xc, own, hit)
        return {"recall_at_k": round(float(recall_from_candidates(sid, dist, hit, self.k)), 6),
                "k": self.k, "sample_rows": int(len(self.S))}
