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

_SAMPLE_CHUNK = 16


def _sqdist(S: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Exact squared distances (direct differences, so a row's distance to itself is 0)."""
    out = np.empty((S.shape[0], X.shape[0]))
    for i in range(0, S.shape[0], _SAMPLE_CHUNK):
        diff = X[None, :, :] - S[i:i + _SAMPLE_CHUNK, None, :]
        out[i:i + _SAMPLE_CHUNK] = np.einsum("sij,sij->si", diff, diff)
    return out


def top_candidates(S: np.ndarray, X: np.ndarray, k: int):
    """For each sample row, the k+1 nearest rows of ``X``: (sample id, distance, row of X) arrays."""
    if X.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
    D = _sqdist(S, X)
    m = min(k + 1, X.shape[0])
    idx = np.argpartition(D, m - 1, axis=1)[:, :m] if m < X.shape[0] else np.tile(np.arange(X.shape[0]), (len(S), 1))
    sid = np.repeat(np.arange(len(S)), idx.shape[1])
    return sid, np.take_along_axis(D, idx, 1).ravel(), idx.ravel()


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
