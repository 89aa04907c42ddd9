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
#: Columns sampled per row for the fast path's candidate threshold (a partition over them costs
#: ~5 ns a value, so fewer and a lower rank beat many: 17% -> 2% of the search).
_FAST_SUBSET = 1024
#: Candidates per row the threshold aims at (the rank taken in the subset follows from it).
_FAST_CANDIDATES = 256
#: (query rows, index rows) per float32 distance tile of the fast path: 1 MiB, a core's L2 here;
#: 2 MiB tiles ran as fast alone but ~15% slower with both cores searching (shared L3).
_FAST_TILE = (256, 1024)
#: Query rows per pass of the probed search (:func:`probed_neighbours`): (row, value, column) keys
#: of groups up to 2^19 rows still fit 63 bits, and each cell's GEMM has hundreds of rows.
_PROBE_CHUNK = 4096
#: Candidates per row the probed search's threshold aims at: fewer than the fast path's, as the
#: threshold's error only sends a row to the (rare) whole-probe search.
_PROBE_CANDIDATES = 128
#: Candidates expected in one scan of the probed search (~20 bytes each, sorted): query rows are
#: taken fewer at a time when copies of one row make each other's candidates.
_PROBE_BUDGET = 1 << 21
#: Distances per chunk when rows are scored against centroids (an 8 MB float32 block, whatever
#: the number of cells).
_CENTROID_BLOCK = 1 << 21
#: Bits of the int64 sort key (row in tile, float32 value, column) of the fast path's candidates;
#: groups with more columns than fit (over ~8M rows) take a stable argsort instead.
_PACK_BITS = 63

_CONTROLLER = None


def one_blas_thread():
    """A context that runs numpy's BLAS on ``_BLAS_THREADS`` thread(s). ``threadpool_limits()``
    inspects every library the process has loaded on each call (~3 ms here; k-means on the driver
    and the kernel's blocks call it hundreds of times); the controller is made once per process
    and reused (~0.03 ms a call). numpy's BLAS is loaded before this module, so the controller
    knows it; libraries loaded later (scipy's BLAS, scikit-learn's OpenMP) may not be limited, so
    only numpy runs under it: scikit-learn's own search (:func:`neighbours`) keeps
    ``threadpool_limits``. The limit applies when this is called: use it only in a ``with``."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=_BLAS_THREADS)


def _ordered_bits(g: np.ndarray) -> np.ndarray:
    """float32 values -> int64 keys in the same order (IEEE bits, negative values reversed)."""
    # -i for negative bits, i + 2^31 for the others (the same keys as flipping the negatives'
    # magnitude and adding 2^31), computed in place: one int64 array, no full-size temporaries
    i = g.view(np.int32).astype(np.int64)
    up = i >= 0
    np.abs(i, out=i)
    np.add(i, 1 << 31, out=i, where=up)
    return i


def _value_of_bits(o: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_ordered_bits` for values <= 0 (the candidates): float64 values."""
    mag = ((1 << 31) - o).astype(np.int32)  # the magnitude's IEEE bits (sign cleared)
    return -mag.view(np.float32).astype(np.float64)


@dataclass
class Draw:
    rows: np.ndarray        # index of the base row of each new row
    neighbours: np.ndarray  # index (into the same group) of the neighbour used
    steps: np.ndarray       # u in [0, 1), shape (n, 1)
    nn: np.ndarray          # the (n_rows, k) neighbour table, self excluded


def neighbours(X: np.ndarray, k: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """(hi - lo, k) indices of rows ``lo:hi``'s k nearest other rows of ``X``: imbalanced-learn's
    ``NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)[lo:hi, 1:]`` (brute force is one
    search per query row, so querying a slice gives that slice of the whole table).

    scikit-learn's ``algorithm='auto'`` picks a KD-tree for low-dimensional data and brute force
    (BLAS) above 15 features, where trees stop pruning; keeping that choice is also what keeps
    neighbour order, and so parity, identical to imbalanced-learn's.
    """
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    with threadpool_limits(limits=_BLAS_THREADS):
        return nn.kneighbors(X[lo:hi], return_distance=False)[:, 1:]


def fast_neighbours(X: np.ndarray, k: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """The same table as :func:`neighbours` (rows ``lo:hi``) for large high-dimensional groups,
    faster.

    Above ~15 dimensions only brute force is exact, one distance per pair of rows, so the pair
    loop is kept as lean as numpy allows. For centred rows, float32 GEMMs give
    ``|x|^2 - 2 q.x`` (the squared distance less ``|q|^2``) tile by tile (tiles small enough to
    stay in cache). A threshold per query row, a low-ranked value over an evenly strided subset of
    ~1024 rows (ranked so that ~256 rows of the group fall under it; in small groups the ``m``-th,
    which bounds the ``m``-th smallest overall), and one vectorised comparison per tile keep those
    candidates instead of a full ``argpartition``; a row left with fewer than ``m`` is searched
    whole. The ``m = k + 1 + margin`` best candidates by float32 value are re-ranked by exact float64 distances
    (ties by index) and the first, the row itself, is dropped as imbalanced-learn drops column 0.
    Each row's result is then certified: its k-th neighbour must be nearer, by a bound on float32
    rounding, than the worst kept candidate, hence than every row left out. A row that fails
    (tight clusters far from the group mean, where float32 cannot tell its neighbours apart) is
    searched again over the whole group in float64. On well-spread data no row fails, and the
    check costs nothing measurable.
    """
    n, dim = X.shape
    hi = n if hi is None else min(hi, n)
    m = min(k + 1 + _FAST_MARGIN, n)
    Xc = X - X.mean(axis=0)
    X32 = np.ascontiguousarray(Xc, dtype=np.float32)
    # [x, |x|^2, 1] . [-2q, 1, -thr] = |x|^2 - 2 q.x - thr: the threshold rides in the GEMM and a
    # candidate is a value <= 0, a compare against a constant (cheaper than one per row)
    XaT = np.ascontiguousarray(np.hstack([X32, (X32 * X32).sum(axis=1, keepdims=True), np.ones((n, 1), np.float32)]).T)
    stride = max(1, n // _FAST_SUBSET)
    XsT = np.ascontiguousarray(XaT[:-1, ::stride])
    # rank in the subset: ~_FAST_CANDIDATES rows of the whole group fall under it (at least
    # ~stride: rank 0 in groups over 256 x 1024 rows); from rank m - 1 on, the m subset rows
    # themselves guarantee m candidates (small groups)
    rank = min(m - 1, XsT.shape[1] - 1, max(0, -(-_FAST_CANDIDATES // stride) - 1))
    scale = np.float32(XaT[-2].mean())  # typical |x|^2: the magnitude of the GEMM values
    norms2 = np.einsum("ij,ij->i", Xc, Xc)  # float64 |x|^2 of the centred rows
    R = float(np.sqrt(norms2.max()))
    out = np.empty((max(hi - lo, 0), k), dtype=np.intp)
    rows, cols = _FAST_TILE
    buf, mask = np.empty((rows, cols), np.float32), np.empty((rows, cols), bool)
    # (row, value bits, column) packed in 63 bits when the group's columns fit in what is left
    cbits = max(1, int(n - 1).bit_length())
    packed = (rows - 1).bit_length() + 32 + cbits <= _PACK_BITS
    vshift = 32 + cbits
    with one_blas_thread():
        for s in range(lo, hi, rows):
            q = min(rows, hi - s)
            Q = np.empty((q, dim + 2), np.float32)
            Q[:, :dim] = -2.0 * X32[s:s + q]
            Q[:, dim] = 1.0
            if m < n:
                thr = np.partition(Q[:, :-1] @ XsT, rank, axis=1)[:, rank]
                # two GEMM calls may round the same dot product differently: widen a little
                Q[:, -1] = -(thr + np.float32(1e-4) * (np.abs(thr) + scale))
                rr, cc, gg = [], [], []
                for b in range(0, n, cols):
                    w = min(cols, n - b)
                    G = np.matmul(Q, XaT[:, b:b + w], out=buf[:q, :w])
                    flat = np.flatnonzero(np.less_equal(G, 0, out=mask[:q, :w]))  # 2-D nonzero is ~10x slower
                    r, c = np.divmod(flat, w)
                    rr.append(r)
                    cc.append(c + b)
                    gg.append(G.ravel()[flat])
                cand, worst, r = _top_m(rr, cc, gg, q, m, Q[:, -1], packed, vshift, cbits)
                short = np.flatnonzero(np.bincount(r, minlength=q) < m)
                if short.size:  # a subset unlike the row's surroundings (rare): search the whole row
                    cand[short], worst[short] = _whole_rows(Q[short, :-1], XaT[:-1], m)
                qn2 = norms2[s:s + q]
                worst += qn2
                # bound on float32 rounding of |x|^2 - 2 q.x - thr (inputs rounded, K-term dot products)
                err = (dim + 8) * 2.0 ** -23 * (2.0 * np.sqrt(qn2) * R + R * R + np.abs(Q[:, -1]))
            else:
                cand = np.tile(np.arange(n), (q, 1))
            ranked, d_k = _rerank(Xc, s, cand, k)
            if m < n:
                # certified exact when the k-th neighbour is nearer than anything left out could be;
                # otherwise (rows in tight clusters far from the mean, where float32 cannot tell
                # the neighbours apart) the row is searched again in float64
                bad = np.flatnonzero(~(d_k < worst - err))
                if bad.size:
                    G64 = norms2[None, :] - 2.0 * (Xc[s + bad] @ Xc.T)
                    cand64 = np.argpartition(G64, m - 1, axis=1)[:, :m]
                    ranked[bad] = _rerank(Xc, s + bad, cand64, k)[0]
            out[s - lo:s - lo + q] = ranked[:, 1:k + 1]
    return out


def _cell_block(n_cells: int) -> int:
    """Rows per block when rows are scored against ``n_cells`` centroids (blocks aligned on row 0)."""
    return max(64, _CENTROID_BLOCK // max(n_cells, 1))


def nearest_cells(X: np.ndarray, C: np.ndarray, lo: int = 0, hi: int | None = None, nprobe: int = 0):
    """Each row's nearest centroid of ``C`` (its cell; ties to the lower index) and, for rows
    ``lo:hi``, the ``nprobe`` nearest centroids, nearest first (the cell first): ``(cells,
    probes)``. One float32 GEMM per chunk of rows (chunks aligned on row 0, one BLAS thread), on
    rows and centroids centred on the centroids' mean and scaled by the power of two that fits
    them: a function of the row and ``C`` only, so a task and the driver scoring the same row get
    the same cells (up to rounding at an exact tie). Any assignment is a valid cut; this one is
    cheap (half a float64 GEMM) and the same on both sides."""
    n = X.shape[0]
    hi = n if hi is None else min(hi, n)
    C = np.asarray(C, dtype=np.float64)
    nprobe = min(int(nprobe), len(C))
    mu = C.mean(axis=0)
    Cc = C - mu
    Cs = pow2_scaled(Cc).astype(np.float32)
    # [x, 1] . [-2c, |c|^2] = |c|^2 - 2 x.c: the squared distance less |x|^2, in one GEMM
    CaT = np.ascontiguousarray(np.hstack([-2.0 * Cs, np.einsum("ij,ij->i", Cs, Cs)[:, None]]).T)
    cells = np.empty(n, dtype=np.int32)
    probes = np.empty((max(hi - lo, 0), nprobe), dtype=np.int32)
    chunk = _cell_block(len(C))
    with one_blas_thread():
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            Xa = np.ones((e - s, C.shape[1] + 1), np.float32)
            Xa[:, :-1] = pow2_scaled(np.asarray(X[s:e], dtype=np.float64) - mu, like=Cc)
            D = Xa @ CaT
            cells[s:e] = np.argmin(D, axis=1)
            a, b = max(s, lo), min(e, hi)
            if nprobe and a < b:
                probes[a - lo:b - lo] = _nearest_first(D[a - s:b - s], nprobe)
    return cells, probes


def _nearest_first(D: np.ndarray, m: int) -> np.ndarray:
    """The columns of each row's ``m`` smallest values of ``D`` (float32, no NaN), smallest
    first, ties to the lower column: one int64 key per value (its bits in signed order, then
    the column), partitioned and the first ``m`` sorted, a third of the time of an argpartition
    and a lexsort of (value, column) with the same result."""
    cbits = max(1, int(D.shape[1] - 1).bit_length())
    b = (D + np.float32(0)).view(np.int32)  # -0.0 becomes +0.0: equal values, equal keys
    b ^= (b >> 31) & 0x7FFFFFFF  # negative floats' bits reversed: signed int order = float order
    keys = b.astype(np.int64)
    keys <<= cbits
    keys |= np.arange(D.shape[1])
    if m < D.shape[1]:
        keys.partition(m - 1, axis=1)
        keys = keys[:, :m]
    keys = np.sort(keys, axis=1)
    keys &= (1 << cbits) - 1
    return keys.astype(np.int32)


def probed_neighbours(X: np.ndarray, k: int, lo: int, hi: int | None, C: np.ndarray, nprobe: int) -> np.ndarray:
    """(hi - lo, k) indices of rows ``lo:hi``'s k nearest other rows of ``X`` among the rows whose
    cell (nearest centroid of ``C``, :func:`nearest_cells`) is one of the ``nprobe`` cells nearest
    the row: exact over that set, so what it misses is exactly the row's true neighbours in cells
    it does not probe (what the recall measurement counts). A row whose probed cells hold fewer
    rows than the search keeps is searched over all of ``X``.

    An inverted-file search: the index is ordered by cell; query rows are taken in blocks, each
    cell's index rows are scored in float32 against the block's rows that probe it (a GEMM with
    the per-row threshold riding in it, as :func:`fast_neighbours` does), and the same selection,
    float64 re-ranking and certification follow, a row that fails being searched again in float64
    over its probed rows (rows with the same probes together: copies of one row share them). With
    a sixth of the cells probed, a row is scored against about a sixth of the index.

    Cells and probes come from one computation per block of rows aligned on row 0, so a row's own
    cell is the first it probes and every task holding the group (any ``lo:hi``) gets the same
    probes. Query blocks are cut so that their expected candidates (estimated on the threshold's
    subset) stay bounded: copies of one row are all candidates of each other."""
    n, dim = X.shape
    hi = n if hi is None else min(hi, n)
    nprobe = max(1, min(int(nprobe), len(C)))
    m = min(k + 1 + _FAST_MARGIN, n)
    nlist = len(C)
    block = _cell_block(nlist)
    # each row's cell (on the rows as the driver sees them) and the query rows' probes, from the
    # same GEMM per block of rows aligned on row 0 (the blocks below): scored once, not twice
    cells, probes = nearest_cells(X, C, lo, hi, nprobe)
    order = np.argsort(cells, kind="stable")  # index rows by cell, canonical order within one
    starts = np.searchsorted(cells[order], np.arange(nlist + 1))
    Xc = pow2_scaled(X)
    Xc = Xc - Xc.mean(axis=0)  # the scaled copy is not kept
    X32 = np.ascontiguousarray(Xc, dtype=np.float32)
    XaT = np.ascontiguousarray(np.hstack([X32, (X32 * X32).sum(axis=1, keepdims=True),
                                          np.ones((n, 1), np.float32)])[order].T)
    stride = max(1, n // _FAST_SUBSET)
    XsT = np.ascontiguousarray(XaT[:-1, ::stride])
    rank = min(m - 1, XsT.shape[1] - 1, max(0, -(-_PROBE_CANDIDATES // stride) - 1))
    scale = np.float32(XaT[-2].mean())
    norms2 = np.einsum("ij,ij->i", Xc, Xc)
    R = float(np.sqrt(norms2.max())) if n else 0.0
    out = np.empty((max(hi - lo, 0), k), dtype=np.intp)
    widest = int(np.diff(starts).max()) if nlist else 0
    tile = max(_FAST_TILE[0] * _FAST_TILE[1], widest)  # a cell wider than a tile: one row at a time
    buf, mask = np.empty(tile, np.float32), np.empty(tile, bool)
    cbits = max(1, int(n - 1).bit_length())
    packed = (_PROBE_CHUNK - 1).bit_length() + 32 + cbits <= _PACK_BITS

    def probed_cols(p):  # index positions (cell order) of the cells ``p``; all when too few
        cols = np.concatenate([np.arange(starts[j], starts[j + 1]) for j in p])
        return cols if len(cols) >= m else np.arange(n)

    def with_threshold(Q, r):  # the per-row threshold (the r-th value over the strided subset)
        S = Q[:, :-1] @ XsT
        S.partition(r, axis=1)  # in place: the count below does not depend on the order
        thr = S[:, r].copy()
        Q[:, -1] = -(thr + np.float32(1e-4) * (np.abs(thr) + scale))  # widened: GEMMs round apart
        return (S <= -Q[:, -1:]).sum(axis=1) * stride  # candidates expected per row

    def scan(P, Q):  # the m best candidates of rows Q among the rows of their probed cells P
        flat = P.ravel()
        # the rows probing each cell, in row order: one plain sort of (cell, position) keys, the
        # stable argsort's order in a quarter of its time
        pbits = max(1, int(flat.size - 1).bit_length())
        by_cell = flat.astype(np.int64) << pbits
        by_cell |= np.arange(flat.size)
        by_cell.sort()
        by_cell &= (1 << pbits) - 1
        qrow = by_cell // P.shape[1]
        cstart = np.zeros(nlist + 1, np.intp)
        np.cumsum(np.bincount(flat, minlength=nlist), out=cstart[1:])
        rr, cc, gg = [np.empty(0, np.intp)], [np.empty(0, np.intp)], [np.empty(0, np.float32)]
        for j in np.flatnonzero(np.diff(cstart)):
            a, w = starts[j], starts[j + 1] - starts[j]
            rows_j = qrow[cstart[j]:cstart[j + 1]]
            step = max(1, tile // max(w, 1))
            for t in range(0, len(rows_j) if w else 0, step):
                qq = rows_j[t:t + step]
                G = np.matmul(Q[qq], XaT[:, a:a + w], out=buf[:len(qq) * w].reshape(len(qq), w))
                hit = np.flatnonzero(np.less_equal(G, 0, out=mask[:len(qq) * w].reshape(len(qq), w)))
                r, c = np.divmod(hit, w)
                rr.append(qq[r])
                cc.append(c + a)
                gg.append(G.ravel()[hit])
        cand, worst, r = _top_m(rr, cc, gg, len(Q), m, Q[:, -1], packed, 32 + cbits, cbits)
        return cand, worst, np.flatnonzero(np.bincount(r, minlength=len(Q)) < m)

    def by_probes(rows, P):  # rows (block positions) grouped by identical probes, in pieces
        keys, inv = np.unique(P[rows], axis=0, return_inverse=True)
        for u in range(len(keys)):
            same = rows[inv.ravel() == u]
            for t in range(0, len(same), _FAST_TILE[0]):
                yield same[t:t + _FAST_TILE[0]], probed_cols(keys[u])

    def search(s, P):  # rows s .. s + len(P) with their probes P
        q = len(P)
        Q = np.empty((q, dim + 2), np.float32)
        Q[:, :dim] = -2.0 * X32[s:s + q]
        Q[:, dim] = 1.0
        est = with_threshold(Q, rank)
        cand, worst = np.empty((q, m), dtype=np.intp), np.empty(q)
        short = []
        # blocks of rows whose expected candidates fit the budget (at most _PROBE_CHUNK rows)
        b = 0
        while b < q:
            e = min(q, max(b + 1, b + int(np.searchsorted(np.cumsum(est[b:]), _PROBE_BUDGET, side="right"))))
            cand[b:e], worst[b:e], sh = scan(P[b:e], Q[b:e])
            short.append(sh + b)
            b = e
        short = np.concatenate(short)
        if short.size:  # too few under the threshold: again with one ~8x higher
            Qs = Q[short]
            with_threshold(Qs, min(XsT.shape[1] - 1, 8 * rank + 7))
            c2, w2, still = scan(P[short], Qs)
            cand[short], worst[short] = c2, w2
            for rows, cols in by_probes(short[still], P):  # still too few (rare): all probed rows
                full = Q[rows, :-1] @ XaT[:-1, cols]
                pick = np.argpartition(full, m - 1, axis=1)[:, :m]
                cand[rows] = cols[pick]
                worst[rows] = np.take_along_axis(full, pick, axis=1).max(axis=1)
        cand = order[cand]  # back to the group's row numbers
        qn2 = norms2[s:s + q]
        worst += qn2
        err = (dim + 8) * 2.0 ** -23 * (2.0 * np.sqrt(qn2) * R + R * R + np.abs(Q[:, -1]))
        ranked, d_k = _rerank(Xc, s, cand, k)
        bad = np.flatnonzero(~(d_k < worst - err))
        for rows, cols in by_probes(bad, P):  # not certified: float64 over the probed rows
            cols = order[cols]
            G64 = norms2[cols][None, :] - 2.0 * (Xc[s + rows] @ Xc[cols].T)
            c64 = cols[np.argpartition(G64, m - 1, axis=1)[:, :m]]
            ranked[rows] = _rerank(Xc, s + rows, c64, k)[0]
        return ranked[:, 1:k + 1]

    with one_blas_thread():
        for b0 in range(lo - lo % block, hi, block):  # blocks aligned on row 0, as ``cells``
            b1 = min(b0 + block, n)
            a, e = max(b0, lo), min(b1, hi)
            for s in range(a, e, _PROBE_CHUNK):
                t = min(e, s + _PROBE_CHUNK)
                out[s - lo:t - lo] = search(s, probes[s - lo:t - lo])
    return out

def _top_m(rr, cc, gg, q: int, m: int, thr: np.ndarray, packed: bool, vshift: int, cbits: int):
    """Of the candidates (query row, column, float32 value) gathered tile by tile, the ``m`` best
    of each of the ``q`` query rows by value, ties by column: the (q, m) column table (rows with
    fewer than ``m`` candidates are filled by the caller), the worst kept value per row back in
    ``|x|^2 - 2 q.x`` (``thr``: the threshold term of each row), and every candidate's row."""
    # The candidates are the kernel's largest arrays (up to ~2M in a scan): each tile list is
    # emptied once joined (callers do not use them again) and the keys are built in place, so
    # the peak is a few arrays of them, not a dozen temporaries (a 100k-row index: ~100 -> ~65 MB).
    if packed:
        # (row, value, column) in one int64: one plain sort orders candidates by row, then
        # value, ties by column, as the stable sort does, in a third of its time
        keys = _ordered_bits(np.concatenate(gg))
        gg.clear()
        keys <<= cbits
        keys |= np.concatenate(cc)
        cc.clear()
        r = np.concatenate(rr).astype(np.int64, copy=False)
        rr.clear()
        r <<= vshift
        keys |= r
        del r
        keys.sort()
        r = keys >> vshift
        keys &= (1 << vshift) - 1  # (value, column) of each candidate
    else:
        # one stable sort by (row, value): candidates arrive in column order, so ties keep it
        r, c, g = np.concatenate(rr), np.concatenate(cc), np.concatenate(gg)
        rr.clear(), cc.clear(), gg.clear()
        o = np.argsort((r.astype(np.int64) << 32) + _ordered_bits(g), kind="stable")
        r, c, g = r[o], c[o], g[o]
        del o
    pos = np.arange(len(r))
    pos -= np.searchsorted(r, np.arange(q))[r]
    sel = np.flatnonzero(pos < m)
    last = np.flatnonzero(pos == m - 1)
    cand = np.empty((q, m), dtype=np.intp)
    if packed:
        cand[r[sel], pos[sel]] = keys[sel] & ((1 << cbits) - 1)
        g_last = _value_of_bits(keys[last] >> cbits)
    else:
        cand[r[sel], pos[sel]] = c[sel]
        g_last = g[last].astype(np.float64)
    # worst kept value per row, back in squared distance: every row left out has a float32 value
    # at least this (kept values are <= 0 < the others')
    worst = np.empty(q)
    worst[r[last]] = g_last - thr[r[last]]
    return cand, worst, r

def _rerank(Xc: np.ndarray, rows, cand: np.ndarray, k: int):
    """Candidates of query rows ``rows`` (a start index or an index array) ordered by exact float64
    squared distance, ties by index; and each row's (k+1)-th smallest distance (its k-th
    neighbour after itself)."""
    Qx = Xc[rows:rows + len(cand)] if np.isscalar(rows) else Xc[rows]
    diff = Xc[cand] - Qx[:, None, :]
    d = np.einsum("ijk,ijk->ij", diff, diff)
    order = np.lexsort((cand, d), axis=1)
    return np.take_along_axis(cand, order, axis=1), np.take_along_axis(d, order, axis=1)[:, k]


def _whole_rows(Q: np.ndarray, XaT: np.ndarray, m: int):
    """The ``m`` best columns of whole GEMM rows (rows the threshold left short of candidates) and
    the worst of those ``m`` values."""
    full = Q @ XaT
    idx = np.argpartition(full, m - 1, axis=1)[:, :m]
    return idx, np.take_along_axis(full, idx, axis=1).max(axis=1).astype(np.float64)


def pow2_scaled(X: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """``X`` times the power of two that brings the largest magnitude of ``like`` (default ``X``)
    into [0.5, 1). Only exponents move, so every difference, square and comparison rounds as
    before (distances keep their order exactly) while squares of values near 1e300 or 1e-200,
    which overflow or underflow in float64 (and in float32 far sooner), become ordinary numbers."""
    ref = X if like is None else like
    m = float(np.abs(ref).max()) if ref.size else 0.0
    if m == 0.0 or not np.isfinite(m):
        return X
    e = int(np.frexp(m)[1])
    return X if e == 0 else np.ldexp(X, -e)


def group_neighbours(X: np.ndarray, k: int, lo: int = 0, hi: int | None = None, probe=None) -> np.ndarray:
    """k-NN table (rows ``lo:hi``) of a group of a split class (no parity to keep): the fast path
    for large high-dimensional groups, scikit-learn's (KD-tree in low dimension) otherwise; on
    rows scaled by a power of two (:func:`pow2_scaled`), so no magnitude overflows the search.
    ``probe``: ``(centroids, nprobe)`` of the group's cells: each row then searches only the rows
    of its ``nprobe`` nearest cells (:func:`probed_neighbours`), in the fast path's regime."""
    if X.shape[1] >= _FAST_MIN_FEATURES and X.shape[0] >= _FAST_MIN_ROWS:
        if probe is not None:
            return probed_neighbours(X, k, lo, hi, np.asarray(probe[0], dtype=np.float64), int(probe[1]))
        return fast_neighbours(pow2_scaled(X), k, lo, hi)
    return neighbours(pow2_scaled(X), k, lo, hi)


def draw_indices(n: int, k: int, n_new: int, random_state: np.random.RandomState):
    """imbalanced-learn's ``_make_samples`` draw order: ``randint`` over the flattened (n, k)
    neighbour table, then ``uniform`` steps. Returns (base rows, neighbour columns, steps); it
    needs no neighbour table, so a task can draw first and search neighbours only for the base
    rows it owns."""
    idx = random_state.randint(low=0, high=n * k, size=n_new)
    steps = random_state.uniform(size=n_new)[:, np.newaxis]
    return np.floor_divide(idx, k), np.mod(idx, k), steps


#: Draws made at a time by :func:`draw_stream` and :func:`randint_range`: a task holds O(this)
#: of its group's draw, not the whole (33 bytes a draw: 3.3 GB for 10^8 new rows of one group).
#: 2^18: 4M new rows of 20 features in ~60 MB peak and 1.0 s, against 150 MB and 1.3 s at 2^20.
DRAW_CHUNK = 1 << 18


def randint_range(rs: np.random.RandomState, high: int, n: int, a: int = 0, b: int | None = None,
                  chunk: int | None = None):
    """Yield, in chunks, the values at positions ``[a, b)`` of ``rs.randint(0, high, size=n)``,
    holding O(chunk): legacy ``RandomState`` gives the same values drawn in any chunks (the
    kernel tests pin it), so a task replays the stream up to its own positions and keeps those."""
    b = n if b is None else min(b, n)
    chunk = chunk or DRAW_CHUNK
    if a >= b:
        return
    for s in range(0, b, chunk):
        v = rs.randint(low=0, high=high, size=min(chunk, n - s))
        if s + len(v) > a:
            yield v[max(a - s, 0):b - s]


def draw_stream(n: int, k: int, n_new: int, rs: np.random.RandomState, lo: int = 0, hi: int | None = None,
                a: int = 0, b: int | None = None, chunk: int | None = None):
    """:func:`draw_indices` made in chunks: yields (base rows, neighbour columns, steps) of the
    draws at positions ``[a, b)`` whose base row lies in ``[lo, hi)``, in draw order, holding
    O(chunk) however many rows the group makes. The ``uniform`` steps follow all ``n_new``
    ``randint`` values in the stream and ``RandomState`` cannot skip, so the ``randint`` values
    are walked once to reach the steps (finding whether any draw is the caller's: if none, nothing
    is yielded, and the caller need not search neighbours), then replayed beside them."""
    hi = n if hi is None else hi
    b = n_new if b is None else min(b, n_new)
    chunk = chunk or DRAW_CHUNK
    if a >= b or lo >= hi:
        return
    idx_rs = np.random.RandomState()
    idx_rs.set_state(rs.get_state())
    mine = False
    for s, v in zip(range(0, n_new, chunk), randint_range(rs, n * k, n_new, 0, n_new, chunk)):  # to the steps
        if not mine and s < b and s + len(v) > a:
            r = np.floor_divide(v[max(a - s, 0):b - s], k)
            mine = bool(((r >= lo) & (r < hi)).any())
    if not mine:
        return
    whole = lo == 0 and hi == n
    for s, idx in zip(range(0, b, chunk), randint_range(idx_rs, n * k, n_new, 0, b, chunk)):
        u = rs.uniform(size=len(idx))
        if s + len(idx) <= a:
            continue
        idx, u = idx[max(a - s, 0):], u[max(a - s, 0):]
        rows = np.floor_divide(idx, k)
        if not whole:
            m = (rows >= lo) & (rows < hi)
            idx, u, rows = idx[m], u[m], rows[m]
        if len(rows):
            yield rows, np.mod(idx, k), u[:, np.newaxis]


def draw(nn: np.ndarray, n_new: int, random_state: np.random.RandomState) -> Draw:
    """:func:`draw_indices` applied to a whole group's neighbour table."""
    rows, cols, steps = draw_indices(nn.shape[0], nn.shape[1], n_new, random_state)
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


def lex_order(keys: list) -> np.ndarray | None:
    """Positions that sort rows by ``keys`` (numpy columns, the first most significant), ties in
    all of them kept in arrival order: ``pandas.sort_values(keys, kind="mergesort")``'s order.
    One stable argsort of the first key, then the remaining keys only for runs of equal first
    values (float rows rarely tie, so this is ~20x cheaper than sorting by every column). None
    when a key is not plain numbers (text, or NaN) -- the caller sorts with pandas then."""
    if any(k.dtype.kind not in "iuf" or (k.dtype.kind == "f" and np.isnan(k).any()) for k in keys):
        return None
    o = np.argsort(keys[0], kind="stable")
    if len(keys) > 1 and len(o) > 1:
        s = keys[0][o]
        tie = s[1:] == s[:-1]
        if tie.any():
            in_run = np.zeros(len(o), dtype=bool)
            in_run[1:] |= tie
            in_run[:-1] |= tie
            pos = np.flatnonzero(in_run)
            run = np.cumsum(np.concatenate([[True], ~tie]))[pos]  # runs are contiguous in ``pos``
            sub = o[pos]
            o[pos] = sub[np.lexsort([k[sub] for k in reversed(keys[1:])] + [run])]  # stable: keeps ties
    return o
