"""How much of SMOTE's neighbourhood survives the grouping: recall@k on a sample of rows.

A row's k nearest neighbours within its group's index are exactly those of its global k nearest
neighbours that the index holds (plus stand-ins for the others), so recall@k of the in-group
search is the share of a row's exact global k nearest neighbours (self excluded) that are in its
group's index: its group's own rows or its halo. The sample's
exact global neighbours come from a distributed brute-force pass: every partition of the class
scores the sample against its rows and keeps its k+1 best per sample row; Spark then keeps the
k+1 best overall. Only the sample (a few hundred rows) and those candidates reach the driver.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import Window
from pyspark.sql import functions as F

#: Extra candidates per sample row kept by the GEMM prefilter before exact re-ranking.
_MARGIN = 8


def top_candidates(S: np.ndarray, X: np.ndarray, k: int):
    """For each sample row, the k+1 nearest rows of ``X``: (sample id, distance, row of X) arrays.

    A float64 GEMM (``|x|^2 - 2 s.x`` on centred rows) picks ``k + 1 + margin`` candidates per
    sample row; their exact squared distances (direct differences, so a row's distance to itself
    is 0) pick the ``k + 1``. ~1 ns a pair instead of ~80 for direct differences over all rows."""
    n = X.shape[0]
    if n == 0:
        return np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
    m = min(k + 1, n)
    c = min(m + _MARGIN, n)
    if c < n:
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency

        mu = X.mean(axis=0)
        Xc = X - mu
        with threadpool_limits(limits=1):  # Spark already runs one task per core
            G = (Xc * Xc).sum(axis=1)[None, :] - 2.0 * ((S - mu) @ Xc.T)
        cand = np.argpartition(G, c - 1, axis=1)[:, :c]
        del G
    else:
        cand = np.tile(np.arange(n), (len(S), 1))
    diff = X[cand] - S[:, None, :]
    D = np.einsum("ijk,ijk->ij", diff, diff)
    if m < c:
        pick = np.argpartition(D, m - 1, axis=1)[:, :m]
        cand, D = np.take_along_axis(cand, pick, 1), np.take_along_axis(D, pick, 1)
    sid = np.repeat(np.arange(len(S)), m)
    return sid, D.ravel(), cand.ravel()


def in_index(model, X: np.ndarray, rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """1 where row ``rows[i]`` of ``X`` is in the k-NN index (own rows or halo) of ``groups[i]``."""
    r, g, _ = model.members(X)
    G = max(int(model.n_groups), 1)
    return np.isin(rows * G + groups, r * G + g).astype(np.int64)


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


def neighbour_recall(cdf, xcols, model, k: int, sample_rows: int, seed: int, sample=None) -> dict:
    """recall@k of the grouping ``model`` for the class rows ``cdf`` (columns ``xcols``): the share
    of a sample row's exact k nearest neighbours that its group's k-NN index (halo included) holds.
    The sample: the ``sample_rows`` rows of smallest (hash, values) (``sample``: those rows, already
    taken from :func:`.grouping.class_sample`, which holds them)."""
    if sample is not None:
        S = np.asarray(sample, dtype=np.float64)[:sample_rows]
    else:
        order = [F.xxhash64(F.lit(seed), *[F.col(c) for c in xcols])] + [F.col(c) for c in xcols]
        rows = cdf.select(*xcols).orderBy(*order).limit(sample_rows).collect()  # a few hundred rows
        S = np.array([[r[c] for c in xcols] for r in rows], dtype=np.float64).reshape(-1, len(xcols))
    if len(S) == 0:
        return {"recall_at_k": None, "k": k, "sample_rows": 0}
    sample_groups = model.assign(S)

    def part(batches):
        best = []
        for pdf in batches:
            X = pdf[xcols].to_numpy(dtype=np.float64)
            sid, d, idx = top_candidates(S, X, k)
            hit = in_index(model, X, idx, sample_groups[sid]) if len(idx) else idx
            best.append(pd.DataFrame({"sid": sid, "d": d, "g": hit}))
            if len(best) > 8:  # keep the partition's running best k+1 per sample row
                cur = pd.concat(best)
                best = [cur.sort_values(["sid", "d", "g"], kind="mergesort").groupby("sid").head(k + 1)]
        if best:
            cur = pd.concat(best)
            yield cur.sort_values(["sid", "d", "g"], kind="mergesort").groupby("sid").head(k + 1)

    cand = cdf.select(*xcols).mapInPandas(part, "sid long, d double, g long")
    w = Window.partitionBy("sid").orderBy("d", "g")
    rows = cand.withColumn("_r", F.row_number().over(w)).where(F.col("_r") <= k + 1).collect()
    sid = np.array([r["sid"] for r in rows], dtype=np.int64)
    d = np.array([r["d"] for r in rows])
    g = np.array([r["g"] for r in rows], dtype=np.int64)
    return {"recall_at_k": round(float(recall_from_candidates(sid, d, g, k)), 6),
            "k": k, "sample_rows": int(len(S))}
