"""The SMOTE kernel and the grouping helpers without Spark, imbalanced-learn as the oracle."""

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE as ImbSMOTE
from sklearn.datasets import make_classification
from sklearn.neighbors import NearestNeighbors

from imbal_spark.sampling import _kernel
from imbal_spark.sampling.grouping import GroupModel, choose_splits, cuts_from_counts
from imbal_spark.sampling.smote import (canonical_order, generate_chunks, generate_part, lex_order, part_bounds, parts_for,
                                        plan_parts, splits_draws, draw_bounds)


def _data(n=400, d=6, weights=(0.8, 0.2), seed=0, classes=2):
    X, y = make_classification(n_samples=n, n_features=d, n_informative=3, n_redundant=1,
                               n_classes=classes, weights=list(weights), n_clusters_per_class=1,
                               random_state=seed)
    return X, y


@pytest.mark.parametrize("k,seed,d", [(5, 42, 20), (3, 0, 6), (1, 7, 4), (8, 123, 12)])
def test_kernel_equals_imbalanced_learn_bit_for_bit(k, seed, d):
    X, y = _data(n=500, d=d, seed=seed)
    X_res, y_res = ImbSMOTE(k_neighbors=k, random_state=seed).fit_resample(X, y)
    want = X_res[len(X):]
    Xc = X[y == 1]
    got, _ = _kernel.smote(Xc, len(want), k, seed)
    assert got.shape == want.shape
    assert np.array_equal(got, want)  # exact, not just close


def test_kernel_multiclass_fresh_stream_per_class():
    X, y = _data(n=900, d=5, weights=(0.6, 0.3, 0.1), seed=3, classes=3)
    X_res, y_res = ImbSMOTE(random_state=11).fit_resample(X, y)
    new, new_y = X_res[len(X):], y_res[len(X):]
    counts = np.bincount(y)
    for c in (1, 2):  # imbalanced-learn: classes in sorted order, each with RandomState(11)
        got, _ = _kernel.smote(X[y == c], counts.max() - counts[c], 5, 11)
        assert np.array_equal(got, new[new_y == c])


def test_new_rows_lie_on_segments_to_their_neighbours():
    X, y = _data(n=300, d=4, seed=5)
    Xc = X[y == 1]
    out, d = _kernel.smote(Xc, 200, 4, np.random.RandomState(9))
    nn = NearestNeighbors(n_neighbors=5).fit(Xc).kneighbors(Xc, return_distance=False)[:, 1:]
    for i in range(len(out)):
        base, nb = d.rows[i], d.neighbours[i]
        assert nb in nn[base]
        u = d.steps[i, 0]
        assert 0 <= u < 1
        assert np.allclose(out[i], Xc[base] + u * (Xc[nb] - Xc[base]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n,d,parity", [(200, 4, True), (3000, 20, True), (5000, 20, False)])
def test_parts_split_the_query_rows_and_give_the_single_task_rows(n, d, parity):
    X, _ = _data(n=n, d=d, seed=1)
    n_new = 3 * n + 1
    whole = generate_part(X, n_new, 5, np.random.RandomState(4), 0, 1, parity)
    bounds = [part_bounds(n, p, 4) for p in range(4)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] and a[1] % 256 in (0, n % 256) for a, b in zip(bounds, bounds[1:]))
    parts = [generate_part(X, n_new, 5, np.random.RandomState(4), p, 4, parity) for p in range(4)]
    # each part keeps its base rows' draws in draw order: reorder the whole output the same way
    rows, _, _ = _kernel.draw_indices(n, 5, n_new, np.random.RandomState(4))
    owner = np.searchsorted([b[1] for b in bounds], rows, side="right")
    assert [len(p) for p in parts] == np.bincount(owner, minlength=4).tolist()
    assert np.array_equal(np.vstack(parts), whole[np.argsort(owner, kind="stable")])  # bit for bit
    chunks = list(generate_chunks(X, n_new, 5, np.random.RandomState(4), chunk_rows=300, parity=parity))
    assert [len(c) for c in chunks[:-1]] == [300] * (len(chunks) - 1)
    assert np.array_equal(np.vstack(chunks), whole)


@pytest.mark.parametrize("n_base,n_halo,d,parity", [(300, 150, 4, False), (5000, 3000, 20, False)])
def test_a_halo_is_searched_but_never_drawn(n_base, n_halo, d, parity):
    """Rows after ``n_base`` are the group's halo: new rows start only from base rows, and their
    neighbours are the exact k nearest among base + halo rows (scikit-learn as the oracle)."""
    X, _ = _data(n=n_base + n_halo, d=d, seed=2)
    k, n_new = 5, 2 * n_base + 3
    out = generate_part(X, n_new, k, np.random.RandomState(6), parity=parity, n_base=n_base)
    rows, cols, steps = _kernel.draw_indices(n_base, k, n_new, np.random.RandomState(6))
    nn = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X[:n_base], return_distance=False)[:, 1:]
    nbr = nn[rows, cols]
    assert (nbr >= n_base).any() and (rows < n_base).all()  # some neighbours are halo rows
    want = X[rows] + steps * (X[nbr] - X[rows])
    assert out.shape == (n_new, d)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)
    # shared out over query parts: the same rows
    parts = [generate_part(X, n_new, k, np.random.RandomState(6), p, 3, parity, n_base=n_base) for p in range(3)]
    owner = np.searchsorted([part_bounds(n_base, p, 3)[1] for p in range(3)], rows, side="right")
    assert np.array_equal(np.vstack(parts), out[np.argsort(owner, kind="stable")])


def test_parts_follow_each_groups_share_of_the_search():
    # with a halo the search is rows x index rows
    assert plan_parts({(1, 0): (30_000, 1, 100_000), (1, 1): (30_000, 1, 50_000)}, 20, 2) == \
        {(1, 0): 3, (1, 1): 2}
    # one big group on 2 cores: 4 parts (2 per core); small data: one task per group
    assert plan_parts({(1, 0): (100_000, 800_000)}, 20, 2) == {(1, 0): 4}
    assert plan_parts({(1, 0): (2_000, 16_000)}, 20, 2) == {(1, 0): 1}
    got = plan_parts({(1, 0): (75_000, 1), (1, 1): (75_000, 1), (1, 2): (37_500, 1)}, 20, 2)
    assert got == {(1, 0): 2, (1, 1): 2, (1, 2): 1}
    # an output too large for one task still splits it, even when the search is cheap, as far
    # as there are 256-row query blocks to share out
    assert parts_for(10 ** 8, 20) == 15
    assert plan_parts({(1, 0): (5_000, 10 ** 8)}, 20, 2) == {(1, 0): 15}
    # ... and a small group whose output needs more parts than it has query blocks shares out
    # its draws (each part searches the whole group)
    assert plan_parts({(1, 0): (1_000, 10 ** 8)}, 20, 2) == {(1, 0): 15}
    assert splits_draws(1_000, 15) and not splits_draws(5_000, 15)
    # not when its index (with a halo) is large: every part would search all of it
    assert plan_parts({(1, 0): (1_000, 10 ** 8, 50_000)}, 20, 2) == {(1, 0): 4}
    # a large group keeps the query-block split (its search is what costs)
    assert plan_parts({(1, 0): (50_000, 10 ** 10)}, 20, 2) == {(1, 0): 196}


@pytest.mark.parametrize("high_k", [(997, 5), (10 ** 9, 7)], ids=["int32-range", "beyond-2^32"])
def test_draws_made_in_chunks_are_the_one_call_draw(high_k):
    """Legacy RandomState gives the same randint and uniform values drawn in any chunks: a part
    replays its group's draw in chunks and keeps its own, as if it had made it in one call."""
    n, k = high_k
    n_new = 10_007
    rows, cols, steps = _kernel.draw_indices(n, k, n_new, np.random.RandomState(3))
    for chunk in (1, 4096, 10 ** 6):
        got = np.concatenate(list(_kernel.randint_range(np.random.RandomState(3), n * k, n_new, 2_000, 7_001, chunk)))
        assert np.array_equal(got, (rows * k + cols)[2_000:7_001])
        for lo, hi, a, b in [(0, n, 0, n_new), (n // 3, n // 2, 0, n_new), (0, n, 123, 9_999), (0, 1, 0, n_new)]:
            parts = list(_kernel.draw_stream(n, k, n_new, np.random.RandomState(3), lo, hi, a, b, chunk))
            pos = np.arange(n_new)
            m = (pos >= a) & (pos < b) & (rows >= lo) & (rows < hi)
            if not m.any():
                assert parts == []
                continue
            r, c, u = (np.concatenate(x) for x in zip(*parts))
            assert np.array_equal(r, rows[m]) and np.array_equal(c, cols[m]) and np.array_equal(u, steps[m])


def test_a_part_holds_a_chunk_of_its_groups_draw_not_the_whole(monkeypatch):
    """Memory (tracemalloc, which sees numpy's buffers): 4M new rows of a 40-row group, shared out
    over 4 parts by draws. A one-call draw holds 33 bytes a new row (132 MB) in every part; a part
    now holds a 64k-draw chunk and one output frame, and the parts' rows are the one-part rows."""
    import tracemalloc

    monkeypatch.setattr(_kernel, "DRAW_CHUNK", 1 << 16)
    X, _ = _data(n=40, d=4, seed=9)
    n_new, size = 4_000_000, 25_000
    whole = _kernel.smote(X, n_new, 5, 11)[0]  # the oracle: the one-call kernel, one task
    peaks, seen = [], 0
    for p in range(4):
        a, b = draw_bounds(n_new, p, 4)
        tracemalloc.start()
        for i, chunk in enumerate(generate_chunks(X, n_new, 5, np.random.RandomState(11), p, 4, chunk_rows=size,
                                                  by_draws=True)):
            assert np.array_equal(chunk, whole[a + i * size:min(a + (i + 1) * size, b)])  # bit for bit
            seen += len(chunk)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert seen == n_new
    assert max(peaks) < 16 * 2 ** 20, peaks  # MB, against 132 MB for one call


def test_kernel_rejects_a_group_smaller_than_k_plus_one():
    with pytest.raises(ValueError, match="at least k_neighbors \\+ 1 = 6 rows, got 5"):
        _kernel.smote(np.zeros((5, 2)), 3, 5, 0)


def test_group_streams_are_distinct_and_reproducible():
    a = _kernel.group_random_state(42, 7, 0).randint(0, 1 << 30, 5)
    b = _kernel.group_random_state(42, 7, 1).randint(0, 1 << 30, 5)
    c = _kernel.group_random_state(42, 8, 0).randint(0, 1 << 30, 5)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a, _kernel.group_random_state(42, 7, 0).randint(0, 1 << 30, 5))
    # a class in one group uses imbalanced-learn's stream, RandomState(seed)
    assert np.array_equal(_kernel.group_random_state(42, 7, None).uniform(size=3),
                          np.random.RandomState(42).uniform(size=3))


def test_canonical_order_ignores_arrival_order():
    rng = np.random.default_rng(0)
    pdf = pd.DataFrame({"_x0": rng.integers(0, 3, 50).astype(float), "_x1": rng.normal(size=50),
                        "_o": rng.permutation(50)})
    a = canonical_order(pdf, ["_x0", "_x1"], None)
    b = canonical_order(pdf.sample(frac=1, random_state=1), ["_x0", "_x1"], None)
    assert a.equals(b)
    assert canonical_order(pdf.sample(frac=1, random_state=2), ["_x0", "_x1"], "_o")["_o"].tolist() == list(range(50))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lex_order_is_pandas_stable_multi_key_sort(seed):
    """The fast canonical order equals pandas' stable sort by every key: many ties in the first
    keys (small integers), rows equal in all keys (kept in arrival order), an order column."""
    rng = np.random.default_rng(seed)
    n = 3000
    pdf = pd.DataFrame({"_o": rng.integers(0, 40, n), "_x0": rng.integers(0, 4, n).astype(float),
                        "_x1": rng.integers(0, 3, n).astype(float), "_x2": rng.normal(size=n)})
    pdf.loc[rng.choice(n, 300), "_x2"] = 0.5  # full ties in some rows
    pdf["arrival"] = np.arange(n)
    for keys in (["_x0", "_x1", "_x2"], ["_o", "_x0", "_x1", "_x2"], ["_x2"], ["_x0", "_x1"]):
        want = pdf.sort_values(keys, kind="mergesort")["arrival"].to_numpy()
        assert np.array_equal(lex_order([pdf[c].to_numpy() for c in keys]), want)
    assert canonical_order(pdf, ["_x0", "_x1", "_x2"], "_o").equals(
        pdf.sort_values(["_o", "_x0", "_x1", "_x2"], kind="mergesort", ignore_index=True))


def test_canonical_order_falls_back_to_pandas_for_text_or_nan_keys():
    pdf = pd.DataFrame({"_o": ["b", "a", None, "a"], "_x0": [1.0, 2.0, 0.0, 1.0]})
    assert lex_order([pdf["_o"].to_numpy(), pdf["_x0"].to_numpy()]) is None
    assert canonical_order(pdf, ["_x0"], "_o")["_x0"].tolist() == [1.0, 2.0, 1.0, 0.0]
    nan = pd.DataFrame({"_o": [2.0, np.nan, 1.0], "_x0": [0.0, 1.0, 2.0]})
    assert lex_order([nan["_o"].to_numpy()]) is None
    assert canonical_order(nan, ["_x0"], "_o")["_x0"].tolist() == [2.0, 0.0, 1.0]


def test_cuts_split_counts_evenly():
    bins = np.arange(100)
    counts = np.full(100, 10)
    cuts = cuts_from_counts(bins, counts, 4)
    assert cuts.tolist() == [25, 50, 75]
    part = (bins[:, None] >= cuts).sum(axis=1)
    assert np.bincount(part, weights=counts).tolist() == [250, 250, 250, 250]
    # a heavy bin cannot be split: the parts stay ordered and every bin lands in one part
    cuts = cuts_from_counts(np.array([0, 1, 2]), np.array([5, 1000, 5]), 3)
    assert (np.diff(cuts) >= 0).all()


def test_choose_splits_cuts_wider_axes_more():
    assert choose_splits(np.array([16.0, 1.0, 1.0]), 4) == [4]
    g = choose_splits(np.array([4.0, 4.0, 1.0]), 4)
    assert g == [2, 2]
    assert choose_splits(np.array([0.0, 0.0]), 4) == []
    # equal spreads: the last cut reaches 20 cells with 24, not 32
    assert choose_splits(np.ones(18), 20) == [3, 2, 2, 2]


def test_group_model_assign_is_batch_independent():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 3))
    m = GroupModel(lo=X.min(0), inv=1 / (X.max(0) - X.min(0)), dirs=np.eye(3)[:2], splits=[2, 2],
                   plo=np.zeros(2), pscale=np.full(2, 64.0), bins=[64, 64],
                   cuts=[np.array([[32]]), np.array([[30], [34]])],
                   group_base=np.array([0, 1, 2, 2]), group_mult=np.array([1, 1, 2, 2]), n_groups=4)
    whole = m.assign(X)
    pieces = np.concatenate([m.assign(X[i:i + 37]) for i in range(0, 1000, 37)])
    assert np.array_equal(whole, pieces)
    assert set(whole) == {0, 1, 2, 3}


@pytest.mark.parametrize("seed", range(40))
def test_merged_cells_land_in_the_group_their_rows_are_counted_in(seed):
    """Small cells merge in chains ([50, 2, 2, 50]: the first 2 joins the second, which joins the
    last 50): every cell must follow the chain to the group that counts its rows, and no group
    may keep fewer than k + 1 rows. Checked against the rows each group really receives."""
    from imbal_spark.sampling.grouping import _finish

    rng = np.random.default_rng(seed)
    k = 5
    cells = rng.choice([0, 1, 2, 3, 4, 50], size=int(rng.integers(2, 12))) if seed else np.array([50, 2, 2, 50])
    if cells.sum() < k + 1:
        cells[0] = 50
    m = GroupModel(lo=np.zeros(1), inv=np.ones(1), dirs=np.ones((1, 1)), splits=[len(cells)])
    model, sizes = _finish(None, None, m, cells.copy(), k=k, max_group_rows=1000)
    got = {}
    for c, n in enumerate(cells):  # the rows a group really holds: its cells' rows
        if n:
            got[int(model.group_base[c])] = got.get(int(model.group_base[c]), 0) + int(n)
    assert got == sizes
    assert min(sizes.values()) >= k + 1
    assert sorted(sizes) == list(range(model.n_groups))
    if not seed:
        assert sizes == {0: 50, 1: 54}


def test_numbered_copies_are_dealt_evenly_round_a_hash_split_cell():
    """Copies share a hash, so without their numbers they all land in one group; numbered, a
    cell split three ways gives each group a third of them, batch by batch alike."""
    m = GroupModel(lo=np.zeros(2), inv=np.ones(2), dirs=np.eye(2)[:1], splits=[2], plo=np.zeros(1),
                   pscale=np.ones(1) * 8, bins=[8], cuts=[np.array([[4]])],
                   group_base=np.array([0, 1]), group_mult=np.array([1, 3]), n_groups=4, salted=True)
    X = np.tile([0.9, 5.0], (300, 1))  # 300 copies, in the split cell (bin 7 >= 4)
    assert set(m.assign(X)) == {int(m.assign(X[:1])[0])}  # unnumbered: one group
    dup = np.arange(300)
    g = m.assign(X, dup)
    assert np.bincount(g, minlength=4).tolist() == [0, 100, 100, 100]
    pieces = np.concatenate([m.assign(X[i:i + 37], dup[i:i + 37]) for i in range(0, 300, 37)])
    assert np.array_equal(g, pieces)
    near = np.array([[0.1, 5.0]] * 5)  # the unsplit cell: numbers change nothing there
    assert m.assign(near, np.arange(5)).tolist() == [0] * 5


def test_cells_below_k_plus_one_merge_into_a_neighbour():
    from imbal_spark.sampling.grouping import _finish

    m = GroupModel(lo=np.zeros(1), inv=np.ones(1), dirs=np.ones((1, 1)), splits=[4])
    model, sizes = _finish(None, None, m, np.array([100, 2, 0, 50]), k=5, max_group_rows=200)
    assert sizes == {0: 100, 1: 52}  # the 2-row cell joins the smaller of its neighbours
    assert model.group_base[[0, 1, 3]].tolist() == [0, 1, 1]
    assert model.n_groups == 2


@pytest.mark.parametrize("pack_bits", [63, 0], ids=["packed-sort", "stable-argsort"])
@pytest.mark.parametrize("n,d,k,scale", [(5000, 20, 5, 1.0), (4100, 16, 3, 1e-3), (300, 30, 5, 1e3)])
def test_fast_group_neighbours_equal_scikit_learn(monkeypatch, n, d, k, scale, pack_bits):
    """Both orderings of the candidates (one int64 key per candidate, sorted; or a stable argsort,
    for groups too large to pack) give scikit-learn's table."""
    monkeypatch.setattr(_kernel, "_PACK_BITS", pack_bits)
    rng = np.random.default_rng(n)
    X = (rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + 100.0) * scale  # offset: tests the centring
    want = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    assert np.array_equal(_kernel.fast_neighbours(X, k), want)
    assert np.array_equal(_kernel.group_neighbours(X, k), want)


@pytest.mark.parametrize("candidates", [1, 40])
def test_fast_neighbours_rows_short_of_candidates_are_searched_whole(monkeypatch, candidates):
    """A threshold too tight for some rows (here forced: rank 0 or 1 of the subset) leaves them
    with fewer than k + 1 + margin candidates; they are searched over the whole group and the
    table is still scikit-learn's."""
    rng = np.random.default_rng(candidates)
    X = rng.normal(size=(6000, 20)) * rng.uniform(0.5, 3, size=20)
    monkeypatch.setattr(_kernel, "_FAST_CANDIDATES", candidates)
    searched = []
    whole = _kernel._whole_rows
    monkeypatch.setattr(_kernel, "_whole_rows", lambda Q, XaT, m: searched.append(len(Q)) or whole(Q, XaT, m))
    want = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    assert np.array_equal(_kernel.fast_neighbours(X, 5, 100, 5900), want[100:5900])
    assert sum(searched) > 0  # the fallback did run


def test_packed_candidate_keys_keep_value_order_and_decode_exactly():
    """The packed sort key: float32 values <= 0 (candidates) map to bits that sort as the values
    do (-0.0 with +0.0) and decode to the same values."""
    g = np.array([-np.inf, -3.5e38, -1.0, -1e-45, -0.0, 0.0, -2.5, -1.0], np.float32)
    bits = _kernel._ordered_bits(g)
    assert np.array_equal(np.argsort(bits, kind="stable"), np.argsort(g, kind="stable"))
    assert np.array_equal(_kernel._value_of_bits(bits), g.astype(np.float64))
    assert bits.max() < 1 << 32
    # any float32 bit pattern but NaN (the stable-argsort path keys values of either sign): the
    # keys sort as the values, -0.0 tied with +0.0, and fit 32 bits
    r = np.random.default_rng(3).integers(-2**31, 2**31, size=200_000, dtype=np.int64).astype(np.int32)
    g = np.concatenate([r.view(np.float32), np.float32([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45])])
    g = g[~np.isnan(g)]
    bits = _kernel._ordered_bits(g)
    assert np.array_equal(np.argsort(bits, kind="stable"), np.argsort(g, kind="stable"))
    assert bits.min() >= 0 and bits.max() < 1 << 32


@pytest.mark.parametrize("pack_bits", [63, 0], ids=["packed-sort", "stable-argsort"])
def test_fast_neighbours_with_exact_copies_keep_the_nearest_distances(monkeypatch, pack_bits):
    """Copies tie at distance 0 with the row itself; scikit-learn's order among such ties follows
    float rounding, so the oracle here is the exact distances. Like imbalanced-learn, the first of
    the k + 1 nearest is dropped as "self": when it is a copy the row itself may stay, the same
    point, so each row's k neighbours are at the 2nd to (k+1)-th smallest distances."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6000, 20))
    X[3000:3300] = X[:300]
    X[3300:3310] = X[0]  # one row with 11 copies: more ties than k
    monkeypatch.setattr(_kernel, "_PACK_BITS", pack_bits)
    got = _kernel.fast_neighbours(X, 5)
    for i in list(range(0, 400)) + list(range(2990, 3320)):
        d = ((X - X[i]) ** 2).sum(axis=1)
        assert len(set(got[i])) == 5
        assert np.array_equal(np.sort(d[got[i]]), np.sort(d)[1:6])


@pytest.mark.parametrize("n", [3, 14, 15, 5000])
def test_recall_candidates_are_the_exact_nearest_rows(n):
    """The recall pass's per-partition candidates: each sample row's k + 1 nearest rows of the
    partition with exact squared distances (0 for the row itself), as a full sort gives them."""
    from imbal_spark.sampling.neighbours import top_candidates

    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 20)) * 3 + 50  # offset: the GEMM prefilter centres the rows
    S = np.vstack([X[: min(n, 7)], rng.normal(size=(5, 20)) * 3 + 50])
    sid, d, idx = top_candidates(S, X, 5)
    m = min(6, n)
    assert len(sid) == len(S) * m
    for i, srow in enumerate(S):
        exact = ((X - srow) ** 2).sum(axis=1)
        got = idx[sid == i]
        np.testing.assert_allclose(np.sort(exact[got]), np.sort(exact)[:m], rtol=1e-12, atol=0)
        np.testing.assert_allclose(d[sid == i], exact[got], rtol=1e-12, atol=0)
        if i < min(n, 7):
            assert d[sid == i].min() == 0.0


def test_fast_neighbours_stay_exact_where_float32_cannot_tell_neighbours_apart():
    """Tight clusters far apart: squared distances inside a cluster (~1-40) are far below float32's
    resolution of |x|^2 (~1e10 here), so the float32 prefilter ranks a cluster's rows almost at
    random. Rows whose k-th neighbour cannot be certified are searched again in float64, and the
    table is still scikit-learn's."""
    rng = np.random.default_rng(11)
    centres = rng.uniform(-1e5, 1e5, size=(200, 20))
    X = np.repeat(centres, 30, axis=0) + rng.normal(size=(6000, 20))
    want = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    assert np.array_equal(_kernel.fast_neighbours(X, 5), want)


def test_distinct_rows_merge_copies_as_spark_grouping_does():
    """The grouping sample's per-partition and driver-side merge of copies: pandas' groupby over
    (hash, values) as the oracle, -0.0 counted as 0.0, the result sorted by (hash, values)."""
    from imbal_spark.sampling.grouping import _distinct_rows

    rng = np.random.default_rng(3)
    vals = rng.integers(-2, 3, size=(40, 3)).astype(np.float64)
    vals[vals == 0] = rng.choice([0.0, -0.0], size=int((vals == 0).sum()))
    idx = rng.integers(0, 40, size=500)
    X = vals[idx].copy()
    n = rng.integers(1, 4, size=500)
    h = np.round(X + 0.0).astype(np.int64) @ np.array([7, 31, 131])  # a hash of the values
    want = (pd.DataFrame(X + 0.0, columns=list("abc")).assign(h=h, n=n)
            .groupby(["h", "a", "b", "c"], sort=True)["n"].sum().reset_index())
    Xd, nd, hd = _distinct_rows(X.copy(), n.copy(), h.copy())
    assert np.array_equal(hd, want["h"].to_numpy()) and np.array_equal(nd, want["n"].to_numpy())
    assert np.array_equal(Xd, want[list("abc")].to_numpy()) and not np.signbit(Xd[Xd == 0]).any()
    assert nd.sum() == n.sum()
    # as the sample is collected: each partition made distinct, then the partitions' results
    # merged on the driver, in any split, gives the same as all rows at once
    for cut in (1, 137, 250):
        parts = [_distinct_rows(X[a:b].copy(), n[a:b].copy(), h[a:b].copy()) for a, b in ((0, cut), (cut, 500))]
        Xm, nm, hm = _distinct_rows(np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                                    np.concatenate([p[2] for p in parts]))
        assert np.array_equal(Xm, Xd) and np.array_equal(nm, nd) and np.array_equal(hm, hd)


def test_recall_probe_merges_partitions_into_the_global_nearest_rows():
    """Candidates gathered batch by batch in separate partitions and merged in any order are
    each sample row's k + 1 nearest rows of the whole class (exact squared distances)."""
    from imbal_spark.sampling.neighbours import RecallProbe

    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 6))
    S = np.vstack([X[:5], rng.normal(size=(4, 6))])
    probe = RecallProbe(S, 4)
    parts = []
    for chunk in np.array_split(X, 3):
        best = probe.empty()
        for batch in np.array_split(chunk, 4):
            best = probe.scan(batch, best)
        parts.append(best)
    merged = probe.merge(parts[2], probe.merge(parts[0], parts[1]))
    sid, d, Xc = merged
    unit = 4.0 ** -int(np.frexp(np.abs(S).max())[1])  # distances come in the probe's power-of-two units
    for i, s in enumerate(S):
        exact = np.sort(((X - s) ** 2).sum(axis=1))[:5]
        np.testing.assert_allclose(d[sid == i], exact * unit, rtol=1e-12, atol=0)
        np.testing.assert_allclose(((Xc[sid == i] - s) ** 2).sum(axis=1), exact, rtol=1e-12, atol=0)


def test_halo_distance_is_euclidean_over_the_cut_axes_in_feature_space_units():
    """near_cells: the distance from a row to a cell is the Euclidean norm, over the cut axes, of
    the bins between the row and the cell's range, each bin worth the feature-space distance a row
    must move to cross it (over the first axis's standard deviation in feature space)."""
    from imbal_spark.sampling.grouping import _cells_from_sample

    rng = np.random.default_rng(4)
    S = rng.normal(size=(20000, 4)) * [5.0, 3.0, 1.0, 0.2] + [0, 100, -3, 7]  # unequal ranges
    model = _cells_from_sample(S, np.ones(len(S), np.int64), 12)
    assert len(model.splits) >= 2
    grad = np.sqrt(((model.dirs * model.inv) ** 2).sum(axis=1))
    unit = model.psd[0] / grad[0]
    steps = model.halo_steps()
    np.testing.assert_allclose(steps, 1.0 / (model.pscale * grad * unit), rtol=1e-12)
    X = S[:300]
    P = model.projections(X)
    row, cell, dist = model.near_cells(P, 1e9)  # every cell
    own = model.cells(X, P=P)
    n_cells = int(np.prod(model.splits))
    assert len(row) == len(X) * n_cells
    for r, c, d in zip(row[::7], cell[::7], dist[::7]):
        digits, rest = [], int(c)
        for g in reversed(model.splits):
            digits.append(rest % g)
            rest //= g
        digits.reverse()
        parent, total = 0, 0.0
        for l, (g, j) in enumerate(zip(model.splits, digits)):
            b = int(model.bin_of(P[r:r + 1], l)[0])
            cuts = model.cuts[l][parent]
            lo = cuts[j - 1] if j > 0 else -np.inf
            hi = cuts[j] if j < g - 1 else np.inf  # bins lo .. hi-1 belong to digit j
            gap = lo - b if b < lo else (b - hi + 1 if b >= hi else 0)
            total += (gap * steps[l]) ** 2
            parent = parent * g + j
        assert d == pytest.approx(np.sqrt(total), rel=1e-12, abs=1e-12)
        assert (d == 0) == (c == own[r])


def test_recall_candidates_at_equal_distance_are_chosen_by_value_not_arrival_order():
    """Integer features tie often: which of the rows tied at the (k+1)-th distance a sample row
    keeps must not depend on the order partitions and batches arrive in."""
    from imbal_spark.sampling.neighbours import RecallProbe

    g = np.arange(-6, 7, dtype=np.float64)
    X = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)  # distinct lattice points
    S = X[np.random.default_rng(12).choice(len(X), 6, replace=False)]
    probe = RecallProbe(S, 4)  # each interior point: itself, then 6 points at distance 1 for 4 places
    picks = []
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(len(X))
        best = probe.empty()
        for batch in np.array_split(X[perm], 7):
            best = probe.scan(batch, best)
        picks.append(best)
    for other in picks[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(picks[0], other))


@pytest.mark.parametrize("lattice", [False, True], ids=["normal", "ties"])
def test_recall_probe_skips_what_cannot_enter_and_keeps_the_same_rows(lattice, monkeypatch):
    """A batch ranks only the sample rows it can improve (a row's current (k+1)-th distance bounds
    it): the candidates kept are the same, bit for bit, as ranking every sample row in every batch,
    ties at the bound included, and most sample rows are skipped once their bounds have settled."""
    from imbal_spark.sampling import neighbours
    from imbal_spark.sampling.neighbours import RecallProbe

    rng = np.random.default_rng(5)
    if lattice:
        g = np.arange(-5, 6, dtype=np.float64)
        X = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3) + 1000.0
        X = X[rng.permutation(len(X))]
    else:
        X = rng.normal(size=(20000, 8)) * [4, 3, 2, 1, 1, 1, 0.5, 0.5] + 30
    S = X[rng.choice(len(X), 40, replace=False)]
    probe = RecallProbe(S, 4)
    unbounded = RecallProbe(S, 4)
    unbounded.bounds = lambda best: np.full(len(S), np.inf)
    ranked = []
    real = neighbours.top_candidates

    def counting(*a, **kw):
        sid, d, idx = real(*a, **kw)
        ranked.append(len(np.unique(sid)))
        return sid, d, idx

    monkeypatch.setattr(neighbours, "top_candidates", counting)
    a, b = probe.empty(), unbounded.empty()
    for batch in np.array_split(X, 25):
        a, b = probe.scan(batch, a), unbounded.scan(batch, b)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    mine = ranked[0::2]  # the bounded probe's calls, then the unbounded one's, alternately
    assert ranked[1::2] == [len(S)] * 25 and sum(mine[-10:]) < 0.5 * 10 * len(S)
    sid, d, _ = a
    assert np.array_equal(np.bincount(sid), [5] * len(S)) and (d[::5] == 0).all()


def test_recall_probe_bound_keeps_sample_rows_the_gemm_cannot_rank():
    """A class row far larger than the sample overflows the GEMM's expansion (NaN for the batch's
    other rows): the bounded search still ranks those sample rows, as the unbounded one does."""
    from imbal_spark.sampling.neighbours import RecallProbe, top_candidates

    rng = np.random.default_rng(2)
    S = rng.normal(size=(10, 3))
    X = np.vstack([rng.normal(size=(30, 3)), [1e200] * 3])
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point
        free = top_candidates(S, X, 4, all_candidates=True)
        bounded = top_candidates(S, X, 4, all_candidates=True, bound=np.full(len(S), np.inf))
        probe = RecallProbe(S, 4)
        best = probe.scan(X, probe.empty())
    assert len(free[0]) == 10 * 13 and all(np.array_equal(a, b) for a, b in zip(free, bounded))
    assert np.array_equal(np.bincount(best[0]), [5] * 10)


@pytest.mark.parametrize("e", [600, -600])
def test_magnitudes_near_1e180_or_1e_180_leave_halo_search_and_recall_unchanged(e):
    """Squares of ~1e180 overflow and of ~1e-180 underflow in float64 (float32 far sooner): the
    halo's distance units, the groups' neighbour search and the recall probe's distances are
    taken on rows scaled by a power of two, so data scaled by 2**e gives exactly what the
    unscaled data gives (before: no halo, wrong neighbours, recall ~0)."""
    from imbal_spark.sampling.grouping import _cells_from_sample
    from imbal_spark.sampling.neighbours import RecallProbe

    rng = np.random.default_rng(7)
    S = rng.normal(size=(3000, 3)) * [3.0, 1.0, 0.5] + 10.0
    big = np.ldexp(S, e)
    n = np.ones(len(S), np.int64)
    a, b = _cells_from_sample(S, n, 9), _cells_from_sample(big, n, 9)
    assert np.isfinite(a.halo_steps()).all()
    assert np.array_equal(a.halo_steps(), b.halo_steps())
    for X in (rng.normal(size=(600, 3)), rng.normal(size=(4200, 17))):  # scikit-learn's search, the fast path
        want = _kernel.group_neighbours(X, 5)
        assert np.array_equal(_kernel.group_neighbours(np.ldexp(X, e), 5), want)
        assert np.array_equal(want, NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X, return_distance=False)[:, 1:])
    p, q = RecallProbe(S[:50], 4), RecallProbe(big[:50], 4)
    sa, da, xa = p.scan(S, p.empty())
    sb, db, xb = q.scan(big, q.empty())
    assert np.array_equal(sa, sb) and np.array_equal(da, db) and np.array_equal(np.ldexp(xa, e), xb)
    assert (da[::5] == 0).all() and np.isfinite(db).all()  # each sample row finds itself first


# -- the probed search (a split class's rows search only the cells nearest them) ----------------

def _probed_oracle(X, k, lo, hi, C, nprobe):
    """scikit-learn's exact k-NN of each row of ``lo:hi`` over the rows of the cells it probes
    (self dropped), with the cells and probes of :func:`_kernel.nearest_cells`."""
    cells, probes = _kernel.nearest_cells(X, C, lo, hi, nprobe)
    out = np.empty((hi - lo, k), dtype=np.intp)
    for i in range(hi - lo):
        rows = np.flatnonzero(np.isin(cells, probes[i]))
        if len(rows) < k + 1 + _kernel._FAST_MARGIN:  # too few to search: the whole group
            rows = np.arange(len(X))
        nn = NearestNeighbors(n_neighbors=k + 1).fit(X[rows]).kneighbors(X[lo + i:lo + i + 1], return_distance=False)[0]
        out[i] = rows[nn[1:]]
    return out, cells, probes


def _clustered(n, d, seed):
    """Loose clusters, offset from 0 (tests the centring): a row's neighbours spread over cells."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, d))
    return centres[rng.integers(0, 4, n)] + rng.normal(size=(n, d)) * rng.uniform(0.5, 2, size=d) + 50.0


@pytest.mark.parametrize("n,d,n_cells,nprobe,lo,hi", [(6000, 20, 48, 7, 0, 6000), (5000, 16, 64, 10, 300, 1900)])
def test_probed_neighbours_are_the_exact_neighbours_among_the_probed_cells(n, d, n_cells, nprobe, lo, hi):
    from imbal_spark.sampling.grouping import cell_centroids

    X = _clustered(n, d, n)
    C = cell_centroids(X[::7], n_cells)
    want, cells, probes = _probed_oracle(X, 5, lo, hi, C, nprobe)
    assert (probes[:, 0] == cells[lo:hi]).all()  # a row's own cell is the first it probes
    assert len(np.unique(cells)) > n_cells // 2
    got = _kernel.group_neighbours(X, 5, lo, hi, probe=(C, nprobe))
    assert np.array_equal(got, want)
    exact = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X[lo:hi], return_distance=False)[:, 1:]
    missed = np.mean([len(set(a) - set(b)) for a, b in zip(exact, got)])
    assert 0 < missed < 1.0  # it does miss neighbours (the oracle above is not the whole search)


def test_probing_every_cell_is_the_whole_search():
    from imbal_spark.sampling.grouping import cell_centroids

    X = _clustered(5000, 20, 3)
    C = cell_centroids(X[::5], 40)
    want = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    assert np.array_equal(_kernel.group_neighbours(X, 5, probe=(C, 40)), want)


@pytest.mark.parametrize("candidates,subset", [(20, 1024), (1, 6000)], ids=["second-scan", "all-probed-rows"])
def test_probed_rows_short_of_candidates_are_searched_again(monkeypatch, candidates, subset):
    """A threshold too tight (forced) leaves rows with fewer than k + 1 + margin candidates among
    their probed rows: a second scan with a higher threshold, and where that too falls short (every
    row, when the threshold is a row's distance to itself), all of its probed rows, still give the
    exact table over the probed cells."""
    from imbal_spark.sampling.grouping import cell_centroids

    X = _clustered(6000, 20, candidates)
    C = cell_centroids(X[::6], 60)
    monkeypatch.setattr(_kernel, "_PROBE_CANDIDATES", candidates)
    monkeypatch.setattr(_kernel, "_FAST_SUBSET", subset)
    scans = []
    top_m = _kernel._top_m
    monkeypatch.setattr(_kernel, "_top_m", lambda rr, cc, gg, q, *a: scans.append(q) or top_m(rr, cc, gg, q, *a))
    want, _, _ = _probed_oracle(X, 5, 0, 6000, C, 8)
    assert np.array_equal(_kernel.group_neighbours(X, 5, probe=(C, 8)), want)
    assert len(scans) > 2  # two first scans (blocks of 4096 rows), then second ones
    if subset == 6000:
        assert scans[1] == 4096 and scans[-1] == 6000 - 4096  # every row scanned twice


def test_probed_search_of_copies_stays_exact_with_a_small_candidate_budget(monkeypatch):
    """1,500 copies of one row are each other's candidates (and fail the float32 certificate: their
    distances are all 0): the query rows are cut into many small blocks by the budget, the copies
    are searched again in float64 over their probed rows together, and every row's neighbour
    distances are those of the exact search over its probed cells."""
    from imbal_spark.sampling.grouping import cell_centroids

    X = _clustered(5000, 20, 4)
    X[1000:2500] = X[1000]
    C = cell_centroids(np.unique(X[::3], axis=0), 48)
    monkeypatch.setattr(_kernel, "_PROBE_BUDGET", 100_000)
    scans = []
    top_m = _kernel._top_m
    monkeypatch.setattr(_kernel, "_top_m", lambda rr, cc, gg, q, *a: scans.append(q) or top_m(rr, cc, gg, q, *a))
    got = _kernel.group_neighbours(X, 5, probe=(C, 6))
    want, cells, probes = _probed_oracle(X, 5, 0, 5000, C, 6)
    d = lambda nn: np.sort(((X[nn] - X[:, None, :]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(d(got), d(want))
    assert (d(got)[1000:2500] == 0).all()
    assert len(scans) > 20 and min(scans) < 100  # blocks of a few dozen copies


def test_probed_search_pieced_over_parts_is_the_whole_search():
    """Tasks sharing a group search 256-aligned ranges of its rows: the pieces together are the
    whole range's table (cells and probes come from blocks aligned on row 0)."""
    from imbal_spark.sampling.grouping import cell_centroids

    X = _clustered(30_000, 16, 8)
    C = cell_centroids(X[::20], 100)
    whole = _kernel.group_neighbours(X, 5, 0, 30_000, probe=(C, 12))
    bounds = [0, 256 * 7, 256 * 50, 256 * 82, 256 * 90, 30_000]
    pieces = [_kernel.group_neighbours(X, 5, a, b, probe=(C, 12)) for a, b in zip(bounds, bounds[1:])]
    assert np.array_equal(np.vstack(pieces), whole)


def test_nearest_cells_of_a_slice_are_the_whole_calls():
    """Over more rows than one block: an aligned block scored alone gives the whole call's cells
    and probes, a row's own cell is the first it probes, and both agree with direct distances."""
    from imbal_spark.sampling.grouping import cell_centroids

    X = _clustered(50_000, 20, 9)
    C = cell_centroids(X[::25], 100)
    block = _kernel._cell_block(100)
    assert block < 25_000
    cells, probes = _kernel.nearest_cells(X, C, 0, 50_000, 15)
    assert (probes[:, 0] == cells).all()
    c2, p2 = _kernel.nearest_cells(X[block:2 * block], C, 100, block - 100, 15)
    assert np.array_equal(cells[block:2 * block], c2) and np.array_equal(probes[block + 100:2 * block - 100], p2)
    D = ((X[:500, None, :] - C[None, :, :]) ** 2).sum(-1)  # direct float64 distances
    assert (cells[:500] == D.argmin(axis=1)).mean() > 0.99
    assert (np.take_along_axis(D, probes[:500], axis=1) <= np.sort(D, axis=1)[:, 14:15] * (1 + 1e-5)).all()


@pytest.mark.parametrize("ncols,m", [(250, 38), (7, 7), (300, 1), (1000, 150)])
def test_nearest_first_is_a_lexsort_of_value_then_column(ncols, m):
    """The probes' selection equals sorting each row by (value, column): negative and positive
    values, many exact ties, -0.0 beside +0.0 (equal values: the lower column first)."""
    rng = np.random.default_rng(ncols + m)
    D = rng.integers(-6, 7, size=(400, ncols)).astype(np.float32) * np.float32(0.25)
    D[:200] += rng.standard_normal((200, ncols)).astype(np.float32) * np.float32(1e3)
    D[300:, ::3] = -0.0
    D[300:, 1::3] = 0.0
    want = np.array([np.lexsort((np.arange(ncols), row))[:m] for row in D])
    got = _kernel._nearest_first(D, m)
    assert got.dtype == np.int32 and np.array_equal(got, want)


def test_rows_whose_probed_cells_hold_too_few_rows_search_the_whole_group():
    """Cells of a few rows each, two probed: fewer rows than the search keeps, so those rows are
    searched over the whole group (the per-row fallback)."""
    X = _clustered(4200, 16, 5)
    C = X[::4][:1000].copy()  # 1000 centroids on rows: cells of ~4 rows
    want, cells, probes = _probed_oracle(X, 5, 0, 4200, C, 2)
    few = np.array([np.isin(cells, p).sum() < 14 for p in probes])
    assert few.mean() > 0.5
    assert np.array_equal(_kernel.group_neighbours(X, 5, probe=(C, 2)), want)


def test_the_searches_run_numpys_blas_on_one_thread_and_restore_it():
    # Spark runs one task per core: the k-NN's GEMMs must not spawn a BLAS thread per core each.
    # The limiter is made once per process (threadpool_limits() inspects every loaded library
    # on each call, ~3 ms) and must still set and restore the limit on every use.
    from threadpoolctl import threadpool_info

    def blas_threads():  # numpy's own BLAS: the one the kernel's GEMMs run on
        return [i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas" and "numpy" in i["filepath"]]

    before = blas_threads()
    assert len(before) == 1, "numpy's BLAS is not visible to threadpoolctl"
    seen = []
    for _ in range(2):
        with _kernel.one_blas_thread():
            seen.append(blas_threads())
        assert blas_threads() == before
    assert seen == [[1], [1]]
    assert _kernel._CONTROLLER is not None
    first = _kernel._CONTROLLER
    with _kernel.one_blas_thread():
        pass
    assert _kernel._CONTROLLER is first


def test_probe_cells_weigh_each_sampled_row_by_its_copies():
    """The grouping sample holds distinct rows with copy counts; the cells' k-means weighs each
    row by its copies, as scikit-learn's Lloyd k-means with ``sample_weight`` does from the same
    starting centroids (the oracle), and so as if every copy were a row of its own. Weights of
    one give the unweighted centroids exactly."""
    from sklearn.cluster import KMeans

    from imbal_spark.sampling.grouping import PROBE_ITERATIONS, cell_centroids

    rng = np.random.default_rng(11)
    S = _clustered(3000, 20, 5)
    n = rng.integers(1, 60, len(S))
    n[::97] = 5000  # a few values copied thousands of times
    got = cell_centroids(S, 24, weights=n)
    start = S[np.linspace(0, len(S) - 1, 24).round().astype(np.int64)]
    km = KMeans(n_clusters=24, init=start, n_init=1, max_iter=PROBE_ITERATIONS, tol=0, algorithm="lloyd")
    want = km.fit(S, sample_weight=n).cluster_centers_
    assert np.allclose(got, want, rtol=0, atol=1e-9 * np.abs(S).max())
    plain = cell_centroids(S, 24)
    assert not np.allclose(got, plain)  # the copies move the centroids
    assert np.array_equal(cell_centroids(S, 24, weights=np.ones(len(S), np.int64)), plain)
