"""Split one class's rows into groups of nearby rows, each of at most ``max_group_rows`` rows.

A class too large for one k-NN index is cut like a k-d tree along its principal axes: the first
axis into ``g_1`` slabs of equal row counts, each slab along the second axis into ``g_2`` cells,
and so on, with more cuts along the axes of larger spread (``g_l`` proportional to their
standard deviation), until there are enough cells. Rows of a cell are close along the
high-variance directions, so most of a row's nearest neighbours share its cell.

Everything is computed by Spark passes over the (cached) class rows that return only small
aggregates: exact feature ranges, an exact integer covariance, exact projection ranges, and one
histogram of projection bins per level (cells x bins counts). Cut points come from integer
counts, and every per-row computation is elementwise numpy, so the groups of a row depend only
on the class's rows, never on partitioning or task order.

Cells smaller than ``k + 1`` rows are merged into the previous (or next) cell; a cell still larger
than ``max_group_rows`` (heavy ties along every axis) is split by a hash of its rows.

**Halo.** A cut separates a row from those of its neighbours that lie across it, so each group's
k-NN *index* also holds a halo: the rows of other cells whose box distance to the cell (the
largest distance, over the cut axes, from the row's projection to the cell's range, in standard
deviations of that axis) is below a per-cell width. Halo rows are only searched, never base rows,
so they give no new rows of their own. With ``halo = h`` the cells are cut to about ``(1 - h)`` of
``max_group_rows`` and each cell's width is the widest (in steps of ``HALO_MAX_SD / HALO_BINS``)
that keeps its index within ``max_group_rows``, from one histogram pass of box distances. The
index of every task is bounded by ``max_group_rows`` and the k-NN cost by ``rows x max_group_rows``,
linear in the class, while many more of a row's neighbours are found than by cells alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

#: Features are scaled to [0, 1] and quantised to 2**-Q for the exact integer covariance.
Q_BITS = 20
#: Cells are cut to about this fraction of max_group_rows, leaving room for uneven cuts.
FILL = 0.75
#: Most bins per projection histogram; fewer when there are many cells, to bound what is collected.
MAX_BINS = 4096
MAX_HIST_ROWS = 1 << 18
SPAN_SD = 8.0
#: Halo widths are measured up to this many standard deviations of a cut axis, in HALO_BINS steps.
HALO_MAX_SD = 2.0
HALO_BINS = 64


@dataclass
class GroupModel:
    """How rows of one class map to group ids (pure numpy, picklable into Spark tasks)."""

    lo: np.ndarray          # (d,) feature minima
    inv: np.ndarray         # (d,) 1 / feature range (0 for a constant feature)
    dirs: np.ndarray        # (L, d) projection directions (principal axes of the scaled rows)
    splits: list            # g_l cells per parent at level l
    plo: np.ndarray = None  # (L,) projection minima
    pscale: np.ndarray = None  # (L,) bins / projection range
    bins: list = field(default_factory=list)  # bins per level
    cuts: list = field(default_factory=list)  # per level: (n_parent_cells, g_l - 1) bin cut indices
    group_base: np.ndarray = None  # (n_cells,) first group id of each final cell
    group_mult: np.ndarray = None  # (n_cells,) hash sub-groups of each final cell (1 = no split)
    n_groups: int = 1
    index_rows: dict = field(default_factory=dict)  # {group: rows of its k-NN index (base + halo)}
    psd: np.ndarray = None  # (L,) standard deviation of each projection
    halo_bins: np.ndarray = None  # (n_cells,) halo of a cell: box distance bin < this (0 = none)
    halo_ok: np.ndarray = None  # (n_cells,) cells that may take a halo (own their group, no hash split)

    @property
    def levels(self) -> int:
        return len(self.splits)

    def projections(self, X: np.ndarray) -> np.ndarray:
        """(n, L) projections, computed elementwise (no BLAS) so a row's value never depends on
        the batch it arrives in."""
        Z = (X - self.lo) * self.inv
        P = np.zeros((X.shape[0], self.levels))
        for l in range(self.levels):
            acc = np.zeros(X.shape[0])
            for j in range(X.shape[1]):
                if self.dirs[l, j] != 0.0:
                    acc += self.dirs[l, j] * Z[:, j]
            P[:, l] = acc
        return P

    def bin_of(self, P: np.ndarray, level: int) -> np.ndarray:
        b = np.floor((P[:, level] - self.plo[level]) * self.pscale[level])
        return np.clip(b, 0, self.bins[level] - 1).astype(np.int64)

    def cells(self, X: np.ndarray, upto: int | None = None, P: np.ndarray | None = None) -> np.ndarray:
        """Cell ids after the first ``upto`` levels (all levels by default)."""
        upto = self.levels if upto is None else upto
        P = self.projections(X) if P is None else P
        cell = np.zeros(X.shape[0], dtype=np.int64)
        for l in range(upto):
            b = self.bin_of(P, l)
            cuts = self.cuts[l][cell]  # (n, g-1)
            part = (b[:, None] >= cuts).sum(axis=1) if cuts.shape[1] else np.zeros_like(cell)
            cell = cell * self.splits[l] + part
        return cell

    def near_cells(self, P: np.ndarray, max_sd: float):
        """(row, cell, box distance in sd) of every final cell within ``max_sd`` of each row of
        projections ``P``; a row's own cell is there with distance 0. Elementwise: a row's entries
        never depend on its batch. The distance to a cell is measured in whole bins of each cut
        axis (a row is in a cell's range exactly when its bin is), scaled to standard deviations."""
        n = P.shape[0]
        row = np.arange(n)
        cell = np.zeros(n, dtype=np.int64)
        dist = np.zeros(n)
        for l, g in enumerate(self.splits):
            b = self.bin_of(P, l)[row]
            step = 1.0 / (self.pscale[l] * self.psd[l]) if self.pscale[l] > 0 and self.psd[l] > 0 else np.inf
            cuts = self.cuts[l][cell]  # (m, g-1)
            rr, cc, dd = [], [], []
            for j in range(g):
                gap = np.zeros(len(row), dtype=np.int64)
                if j > 0:
                    gap = np.maximum(gap, cuts[:, j - 1] - b)
                if j < g - 1:
                    gap = np.maximum(gap, b - cuts[:, j] + 1)
                nd = np.maximum(dist, np.where(gap > 0, gap * step, 0.0))
                keep = nd <= max_sd
                rr.append(row[keep])
                cc.append(cell[keep] * g + j)
                dd.append(nd[keep])
            row, cell, dist = np.concatenate(rr), np.concatenate(cc), np.concatenate(dd)
        return row, cell, dist

    @property
    def has_halo(self) -> bool:
        return self.halo_bins is not None and bool((self.halo_bins > 0).any())

    def _halo_entries(self, X: np.ndarray, own: np.ndarray, max_sd: float = HALO_MAX_SD):
        """(row, cell, group, distance bin) of the rows of ``X`` within ``max_sd`` of other groups'
        cells (candidates for their halo): cells that may take a halo, not the row's own group."""
        r, c, d = self.near_cells(self.projections(X), max_sd)
        g = self.group_base[c]
        keep = (d > 0) & self.halo_ok[c] & (g != own[r])
        r, c, d, g = r[keep], c[keep], d[keep], g[keep]
        hb = np.minimum((d * (HALO_BINS / HALO_MAX_SD)).astype(np.int64), HALO_BINS - 1)
        return r, c, g, hb

    def members(self, X: np.ndarray):
        """(row, group, is_halo) of every k-NN index a row of ``X`` belongs to: its own group
        (``is_halo`` false) and the halo of every group whose cell is near enough."""
        own = self.assign(X)
        n = X.shape[0]
        if not self.has_halo:
            return np.arange(n), own, np.zeros(n, dtype=bool)
        # only cells as far as the widest halo (plus a bin, so rounding cannot drop a row) matter
        reach = min(HALO_MAX_SD, (int(self.halo_bins.max()) + 1) * HALO_MAX_SD / HALO_BINS)
        r, c, g, hb = self._halo_entries(X, own, reach)
        keep = hb < self.halo_bins[c]
        r, g = r[keep], g[keep]
        return (np.concatenate([np.arange(n), r]), np.concatenate([own, g]),
                np.concatenate([np.zeros(n, dtype=bool), np.ones(len(r), dtype=bool)]))

    def assign(self, X: np.ndarray) -> np.ndarray:
        """Group id of every row of ``X`` (an (n, d) float64 matrix of this class)."""
        if self.n_groups == 1:
            return np.zeros(X.shape[0], dtype=np.int64)
        cell = self.cells(X)
        g = self.group_base[cell].copy()
        mult = self.group_mult[cell]
        split = mult > 1
        if split.any():
            h = row_hash(X[split])
            g[split] += (h % mult[split].astype(np.uint64)).astype(np.int64)
        return g


def row_hash(X: np.ndarray) -> np.ndarray:
    """A deterministic 64-bit hash of each row's values."""
    return pd.util.hash_pandas_object(pd.DataFrame(X), index=False).to_numpy()


def choose_splits(eigvals: np.ndarray, n_cells: int) -> list:
    """Cells per principal axis: add a cut along the axis with the widest cells (std / cells)
    until their product reaches ``n_cells``; the last cut goes where it overshoots least, so the
    cells stay as large as ``max_group_rows`` allows."""
    sd = np.sqrt(np.clip(eigvals, 0, None))
    usable = int((sd > sd[0] * 1e-9).sum()) if sd.size and sd[0] > 0 else 0
    if usable == 0:
        return []
    g = [1] * usable
    def after(i):
        return math.prod(g) // g[i] * (g[i] + 1)

    while math.prod(g) < n_cells:
        l = int(np.argmax([sd[i] / g[i] for i in range(usable)]))
        if after(l) > n_cells:  # overshoots: a cut elsewhere may reach the target with fewer cells
            reach = [i for i in range(usable) if n_cells <= after(i) < after(l)]
            if reach:
                l = max(reach, key=lambda i: (sd[i] / g[i], -i))
        g[l] += 1
    while g and g[-1] == 1:
        g.pop()
    return g


def cuts_from_counts(bins: np.ndarray, counts: np.ndarray, parts: int) -> np.ndarray:
    """Bin indices where parts 1..parts-1 start so that the parts have near-equal row counts.

    ``bins`` sorted ascending, ``counts`` their row counts. A row with bin ``b`` goes to part
    ``(b >= cuts).sum()``.
    """
    if parts <= 1:
        return np.empty(0, dtype=np.int64)
    total = counts.sum()
    cum = np.cumsum(counts)
    out = []
    for j in range(1, parts):
        target = total * j / parts
        i = int(np.searchsorted(cum, target, side="left"))  # first bin whose cum reaches target
        i = min(i, len(bins) - 1)
        # cut before or after bin i, whichever lands closer to the target
        before = cum[i - 1] if i > 0 else 0
        idx = i + 1 if (cum[i] - target) < (target - before) else i
        out.append(bins[idx] if idx < len(bins) else bins[-1] + 1)
    return np.maximum.accumulate(np.asarray(out, dtype=np.int64))


# -- the Spark passes ----------------------------------------------------------------------------

def _matrix(pdf, xcols):
    return pdf[xcols].to_numpy(dtype=np.float64)


def _exact_cov(cdf, xcols, lo, inv, n):
    """Covariance of the scaled, quantised rows from exact integer sums (order-independent)."""
    d = len(xcols)
    scale = float(1 << Q_BITS)

    def part(batches):
        # One row per partition (not per batch): what reaches the driver does not grow with the
        # class. Chunk sums stay in int64 (2**40 * 2**16 is far below overflow); the running
        # partition sums are Python ints (exact), summed into int64 arrays only per chunk.
        n, t1, t2 = 0, [0] * d, [0] * (d * d)
        for pdf in batches:
            X = _matrix(pdf, xcols)
            for s in range(0, len(X), 1 << 16):
                q = np.floor((X[s:s + (1 << 16)] - lo) * inv * scale).astype(np.int64)
                n += len(q)
                t1 = [a + b for a, b in zip(t1, q.sum(axis=0).tolist())]
                t2 = [a + b for a, b in zip(t2, (q.T @ q).ravel().tolist())]
                if n >= 1 << 22:  # a long holds 2**40 per value times 2**23 rows: flush well before
                    yield pd.DataFrame({"n": [n], "s1": [t1], "s2": [t2]})
                    n, t1, t2 = 0, [0] * d, [0] * (d * d)
        if n:
            yield pd.DataFrame({"n": [n], "s1": [t1], "s2": [t2]})

    rows = cdf.mapInPandas(part, "n long, s1 array<long>, s2 array<long>").collect()  # <= partitions
    s1 = [0] * d
    s2 = [0] * (d * d)
    for r in rows:  # Python ints: exact, whatever the order of the partial sums
        s1 = [a + b for a, b in zip(s1, r["s1"])]
        s2 = [a + b for a, b in zip(s2, r["s2"])]
    m1 = np.array([v / n for v in s1]) / scale
    m2 = np.array([v / n for v in s2]).reshape(d, d) / scale**2
    return m2 - np.outer(m1, m1), m1


def _principal_axes(cov):
    w, v = np.linalg.eigh(cov)
    order = np.argsort(-w, kind="stable")
    w, v = w[order], v[:, order]
    # a fixed sign per axis (largest component positive) so the cut order is reproducible
    sign = np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(v.shape[1])])
    sign[sign == 0] = 1
    return w, (v * sign).T


def build_group_model(cdf, xcols, n_rows: int, k: int, max_group_rows: int, halo: float = 0.0):
    """Passes over ``cdf`` (one class, feature columns ``xcols``, ideally cached) -> GroupModel
    and the exact row count of every group (``model.index_rows``: with its halo)."""
    model, sizes = _build_cells(cdf, xcols, n_rows, k, max_group_rows, halo)
    model.index_rows = dict(sizes)
    if halo > 0 and model.n_groups > 1 and model.splits:
        _plan_halo(cdf, xcols, model, sizes, max_group_rows)
    return model, sizes


def _plan_halo(cdf, xcols, model, sizes, max_group_rows):
    """One pass: per cell, a histogram of the box distances of other groups' rows near it; each
    cell's halo is the widest run of bins that keeps its group's index within max_group_rows."""
    n_cells = len(model.group_base)

    def part(batches):
        acc = np.zeros(n_cells * HALO_BINS, dtype=np.int64)
        for pdf in batches:
            X = _matrix(pdf, xcols)
            if not len(X):
                continue
            _, c, _, hb = model._halo_entries(X, model.assign(X))
            acc += np.bincount(c * HALO_BINS + hb, minlength=acc.size)
        nz = np.flatnonzero(acc)  # one row per partition, only the non-empty bins
        yield pd.DataFrame({"key": nz, "n": acc[nz]})

    rows = cdf.mapInPandas(part, "key long, n long").groupBy("key").agg(F.sum("n").alias("n")).collect()
    hist = np.zeros(n_cells * HALO_BINS, dtype=np.int64)
    for r in rows:
        hist[int(r["key"])] = int(r["n"])
    hist = hist.reshape(n_cells, HALO_BINS)
    model.halo_bins = np.zeros(n_cells, dtype=np.int64)
    for c in range(n_cells):
        g = int(model.group_base[c])
        if not model.halo_ok[c] or not hist[c].any():
            continue
        cum = np.cumsum(hist[c])
        room = max_group_rows - sizes[g]
        b = int(np.searchsorted(cum, room, side="right"))  # bins whose cumulative count fits
        model.halo_bins[c] = b
        model.index_rows[g] = sizes[g] + (int(cum[b - 1]) if b > 0 else 0)


def _build_cells(cdf, xcols, n_rows, k, max_group_rows, halo):
    d = len(xcols)
    aggs = [F.min(c).alias(f"lo{i}") for i, c in enumerate(xcols)] + \
           [F.max(c).alias(f"hi{i}") for i, c in enumerate(xcols)]
    r = cdf.agg(*aggs).collect()[0]
    lo = np.array([r[f"lo{i}"] for i in range(d)], dtype=np.float64)
    hi = np.array([r[f"hi{i}"] for i in range(d)], dtype=np.float64)
    rng = hi - lo
    inv = np.divide(1.0, rng, out=np.zeros(d), where=rng > 0)
    target = max(2 * (k + 1), int(max_group_rows * (1.0 - halo) * FILL))
    n_cells = max(2, math.ceil(n_rows / target))

    cov, _mean_scaled = _exact_cov(cdf, xcols, lo, inv, n_rows)
    w, axes = _principal_axes(cov)
    splits = choose_splits(w, n_cells)
    model = GroupModel(lo=lo, inv=inv, dirs=axes[:len(splits)], splits=splits)
    if not splits:  # every row identical: only hashing can split
        model.group_base = np.zeros(1, dtype=np.int64)
        model.group_mult = np.ones(1, dtype=np.int64)
        return _finish(cdf, xcols, model, np.array([n_rows]), k, max_group_rows)

    # Bins span mean +- SPAN_SD standard deviations of each projection (known exactly from the
    # covariance, so no pass is needed); the rare rows beyond fall into the end bins.
    m1 = _mean_scaled
    sd = np.sqrt(np.clip(w[:len(splits)], 0, None))
    centre = axes[:len(splits)] @ m1
    plo, phi = centre - SPAN_SD * sd, centre + SPAN_SD * sd
    model.plo = plo
    model.psd = sd
    model.pscale = np.zeros(len(splits))
    n_parent = 1
    for l, g in enumerate(splits):
        bins = int(max(64, min(MAX_BINS, MAX_HIST_ROWS // n_parent)))
        model.bins.append(bins)
        width = phi[l] - plo[l]
        model.pscale[l] = bins / width if width > 0 else 0.0
        hist = _histogram(cdf, xcols, model, l)
        cuts = np.zeros((n_parent, g - 1), dtype=np.int64)
        sizes = np.zeros(n_parent * g, dtype=np.int64)
        for cell, (b, c) in hist.items():
            cuts[cell] = cuts_from_counts(b, c, g)
            part = (b[:, None] >= cuts[cell]).sum(axis=1) if g > 1 else np.zeros(len(b), np.int64)
            np.add.at(sizes, cell * g + part, c)
        model.cuts.append(cuts)
        n_parent *= g
    return _finish(cdf, xcols, model, sizes, k, max_group_rows)


def _histogram(cdf, xcols, model, level):
    """{parent cell: (sorted bins, counts)} of the projection on axis ``level``."""

    def part(batches):
        for pdf in batches:
            X = _matrix(pdf, xcols)
            if not len(X):
                continue
            P = model.projections(X)
            cell = model.cells(X, upto=level, P=P)
            b = model.bin_of(P, level)
            key = cell * model.bins[level] + b
            u, c = np.unique(key, return_counts=True)
            yield pd.DataFrame({"key": u, "n": c})

    rows = (cdf.mapInPandas(part, "key long, n long").groupBy("key").agg(F.sum("n").alias("n"))
            .collect())
    keys = np.array([r["key"] for r in rows], dtype=np.int64)
    counts = np.array([r["n"] for r in rows], dtype=np.int64)
    order = np.argsort(keys)
    keys, counts = keys[order], counts[order]
    cells = keys // model.bins[level]
    out = {}
    for cell in np.unique(cells):
        m = cells == cell
        out[int(cell)] = (keys[m] % model.bins[level], counts[m])
    return out


def _finish(cdf, xcols, model, sizes, k, max_group_rows):
    """Number the final cells as groups: merge cells of fewer than k+1 rows into a neighbour,
    hash-split cells above max_group_rows. Returns (model, {group: rows})."""
    n_cells = len(sizes)
    sizes = sizes.astype(np.int64).copy()
    owner = np.arange(n_cells)  # cell whose group a cell joins
    nonempty = [c for c in range(n_cells) if sizes[c] > 0]
    for c in nonempty:
        if sizes[c] >= k + 1:
            continue
        # merge into the nearest non-empty cell in cell order (previous first)
        pos = nonempty.index(c)
        cands = [nonempty[i] for i in (pos - 1, pos + 1) if 0 <= i < len(nonempty)]
        cands = [o for o in cands if owner[o] == o]
        if not cands:
            continue
        tgt = min(cands, key=lambda o: sizes[o])
        owner[c] = tgt
        sizes[tgt] += sizes[c]
        sizes[c] = 0
    mult = np.ones(n_cells, dtype=np.int64)
    for c in range(n_cells):
        if owner[c] == c and sizes[c] > max_group_rows:
            m = math.ceil(sizes[c] / (max_group_rows * 0.9))
            m = max(1, min(m, sizes[c] // (2 * (k + 1))))
            mult[c] = m
    for _ in range(8):
        base = np.zeros(n_cells, dtype=np.int64)
        nxt = 0
        for c in range(n_cells):
            if owner[c] == c and sizes[c] > 0:
                base[c] = nxt
                nxt += mult[c]
        for c in range(n_cells):
            base[c] = base[owner[c]]
            mult[c] = mult[owner[c]]
        model.group_base, model.group_mult, model.n_groups = base, mult, max(nxt, 1)
        # cells that may take a halo: non-empty, owning their group, not hash-split
        model.halo_ok = (owner == np.arange(n_cells)) & (sizes > 0) & (mult == 1)
        if (mult == 1).all():
            return model, {int(base[c]): int(sizes[c]) for c in range(n_cells) if owner[c] == c and sizes[c] > 0}
        counts = group_counts(cdf, xcols, model)
        bad = {g for g, n in counts.items() if n > max_group_rows}
        small = {g for g, n in counts.items() if n < k + 1}
        if not bad and not small:
            return model, counts
        for c in range(n_cells):
            if owner[c] != c or mult[c] == 1:
                continue
            ids = range(base[c], base[c] + mult[c])
            if any(g in bad for g in ids):
                mult[c] += 1
            elif any(g in small for g in ids):
                mult[c] = max(1, mult[c] - 1)
    raise RuntimeError("could not split the class into groups within max_group_rows")


def group_counts(cdf, xcols, model) -> dict:
    def part(batches):
        for pdf in batches:
            g = model.assign(_matrix(pdf, xcols))
            u, c = np.unique(g, return_counts=True)
            yield pd.DataFrame({"g": u, "n": c})

    rows = cdf.mapInPandas(part, "g long, n long").groupBy("g").agg(F.sum("n").alias("n")).collect()
    return {int(r["g"]): int(r["n"]) for r in rows}
