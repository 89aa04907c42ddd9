"""SMOTE on Spark: parity with imbalanced-learn, multi-class and string labels, vector and integer
features, and the partitioned path (segments, merged groups, neighbour recall)."""

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE as ImbSMOTE
from pyspark.ml.functions import array_to_vector
from pyspark.sql import functions as F
from sklearn.neighbors import NearestNeighbors

from imbal_spark.datagen import reference_dataframes, reference_frames
from imbal_spark.errors import ConfigError, InputError
from imbal_spark.sampling import SMOTE

REF_FEATS = [f"f{j}" for j in range(20)]


def _rows(a):
    a = np.asarray(a, dtype=np.float64)
    return a[np.lexsort(a.T[::-1])]


def test_parity_with_imbalanced_learn_on_the_reference_train_set(spark):
    train, _ = reference_dataframes(spark)
    tr, _ = reference_frames()
    X_res, y_res = ImbSMOTE(k_neighbors=5, random_state=42).fit_resample(tr[REF_FEATS].to_numpy(), tr["label"].to_numpy())
    want = X_res[len(tr):]
    assert (y_res[len(tr):] == 1).all()
    # input order must not matter: the `pos` column carries train_test_split's order
    shuffled = train.repartition(4, "f3")
    s = SMOTE(label_col="label", k_neighbors=5, random_state=42, id_cols=["id", "pos"], order_col="pos")
    out = s.fit_resample(shuffled)
    pdf = out.toPandas()
    new = pdf[pdf["is_synthetic"]]
    assert len(new) == 560 and (new["label"] == 1).all()
    assert new["id"].isna().all() and new["pos"].isna().all()
    np.testing.assert_allclose(_rows(new[REF_FEATS]), _rows(want), rtol=0, atol=1e-9)
    assert np.array_equal(_rows(new[REF_FEATS]), _rows(want))  # in fact bit for bit
    old = pdf[~pdf["is_synthetic"]].sort_values("pos")
    assert np.array_equal(old[REF_FEATS].to_numpy(), tr[REF_FEATS].to_numpy())
    assert s.summary_["counts_after"] == {0: 630, 1: 630}
    assert s.summary_["neighbour_recall"][1]["recall_at_k"] == 1.0


def _multiclass_strings(n=(90, 40, 25), d=4, seed=0):
    rng = np.random.default_rng(seed)
    names = ["emu", "cat", "dog"]  # not in sorted order on purpose
    X = np.vstack([rng.normal(loc=i, size=(m, d)) for i, m in enumerate(n)])
    y = np.concatenate([np.full(m, names[i]) for i, m in enumerate(n)])
    perm = rng.permutation(len(y))
    X, y = X[perm], y[perm]
    pdf = pd.DataFrame({f"x{j}": X[:, j] for j in range(d)})
    pdf["animal"] = y
    pdf["pos"] = np.arange(len(y))
    return pdf


def test_multiclass_string_labels_match_imbalanced_learn_per_class(spark):
    pdf = _multiclass_strings()
    feats = ["x0", "x1", "x2", "x3"]
    X_res, y_res = ImbSMOTE(k_neighbors=4, random_state=7).fit_resample(pdf[feats].to_numpy(), pdf["animal"].to_numpy())
    new_X, new_y = X_res[len(pdf):], y_res[len(pdf):]
    df = spark.createDataFrame(pdf).repartition(3)
    s = SMOTE(label_col="animal", k_neighbors=4, random_state=7, order_col="pos")
    out = s.fit_resample(df).where("is_synthetic").toPandas()
    assert dict(s.sampling_strategy_) == {"cat": 50, "dog": 65}
    for c in ("cat", "dog"):
        np.testing.assert_allclose(_rows(out.loc[out["animal"] == c, feats]), _rows(new_X[new_y == c]), rtol=0, atol=1e-9)
    assert "emu" not in set(out["animal"])


def test_a_text_order_column_gives_the_reference_order(spark):
    """An order column of text (zero-padded positions) is sorted by pandas in the kernel (the
    numeric fast path does not take text): the same rows as imbalanced-learn on that order."""
    pdf = _multiclass_strings()
    feats = ["x0", "x1", "x2", "x3"]
    X_res, y_res = ImbSMOTE(k_neighbors=4, random_state=7).fit_resample(pdf[feats].to_numpy(), pdf["animal"].to_numpy())
    new_X, new_y = X_res[len(pdf):], y_res[len(pdf):]
    pdf["pos"] = pdf["pos"].map("{:05d}".format)
    df = spark.createDataFrame(pdf).repartition(3)
    out = SMOTE(label_col="animal", k_neighbors=4, random_state=7, order_col="pos").fit_resample(df) \
        .where("is_synthetic").toPandas()
    for c in ("cat", "dog"):
        assert np.array_equal(_rows(out.loc[out["animal"] == c, feats]), _rows(new_X[new_y == c]))


def test_integer_features_keep_their_type_as_imbalanced_learn_does(spark):
    pdf = _multiclass_strings(n=(60, 20, 15), d=3, seed=2)
    feats = ["x0", "x1", "x2"]
    ints = pdf.assign(**{c: (pdf[c] * 10).round().astype("int64") for c in feats})
    s = SMOTE(label_col="animal", k_neighbors=3, random_state=1, order_col="pos")
    out = s.fit_resample(spark.createDataFrame(ints))
    assert dict(out.dtypes)["x0"] == "bigint"  # schema kept; imbalanced-learn casts back to int too
    X_res, _ = ImbSMOTE(k_neighbors=3, random_state=1).fit_resample(ints[feats], ints["animal"])
    got = out.where("is_synthetic").toPandas()
    assert np.array_equal(_rows(got[feats]), _rows(X_res.iloc[len(ints):].to_numpy()))


def test_vector_features_give_the_same_points_in_vector_form(spark):
    pdf = _multiclass_strings(n=(60, 20, 15), d=3, seed=2)
    feats = ["x0", "x1", "x2"]
    df = spark.createDataFrame(pdf)
    cols = SMOTE(label_col="animal", k_neighbors=3, random_state=1, order_col="pos").fit_resample(df)
    want = cols.where("is_synthetic").select(*feats).toPandas().to_numpy()
    vec = df.select(array_to_vector(F.array(*feats)).alias("features"), "animal", "pos")
    vout = SMOTE(label_col="animal", features="features", k_neighbors=3, random_state=1,
                 order_col="pos").fit_resample(vec)
    assert vout.columns == ["features", "animal", "pos", "is_synthetic"]
    assert dict(vout.dtypes)["features"] == "vector"
    vnew = np.array([r["features"].toArray() for r in vout.where("is_synthetic").collect()])
    assert len(vnew) == 40 + 45
    np.testing.assert_array_equal(_rows(vnew), _rows(want))


def _grouped_run(spark, halo):
    """600 minority rows split into groups whose k-NN index holds at most 150 rows."""
    rng = np.random.default_rng(11)
    maj = rng.normal(size=(1200, 3)) * [3.0, 1.0, 0.5]
    mino = rng.normal(size=(600, 3)) * [2.0, 1.0, 0.3] + [0.5, 0.0, 0.0]
    pdf = pd.DataFrame(np.vstack([maj, mino]), columns=["a", "b", "c"])
    pdf["label"] = [0] * 1200 + [1] * 600
    pdf["id"] = np.arange(len(pdf))
    df = spark.createDataFrame(pdf).repartition(3)
    s = SMOTE(label_col="label", k_neighbors=4, random_state=3, max_group_rows=150, id_cols=["id"],
              recall_sample=600, halo=halo)
    out = s.fit_resample(df).where("is_synthetic").select("a", "b", "c", "label").toPandas()
    s.release()
    return s, pdf, out


@pytest.fixture(scope="module", params=[0.0, 0.6], ids=["no-halo", "halo"])
def grouped(spark, request):
    return _grouped_run(spark, request.param)


def _indexes(model, X):
    """{group: (base rows, index rows)} of a fitted group model, from its membership rule."""
    r, g, h = model.members(X)
    return {int(grp): (np.sort(r[(g == grp) & ~h]), np.sort(r[g == grp])) for grp in np.unique(g)}


def test_grouped_new_rows_lie_on_segments_to_neighbours_in_their_group_index(grouped):
    s, pdf, out = grouped
    X = pdf.loc[pdf["label"] == 1, ["a", "b", "c"]].to_numpy()
    model = s.group_models_[1]
    idx = _indexes(model, X)
    g = model.assign(X)
    sizes = np.bincount(g)
    summ = s.summary_["groups"][1]
    assert len(sizes) == summ["groups"] == len(idx) >= 4
    assert sizes.min() >= 5
    # every row is the base row of exactly one group; indexes (base + halo) stay within max_group_rows
    assert sorted(np.concatenate([b for b, _ in idx.values()]).tolist()) == list(range(len(X)))
    assert {grp: len(i) for grp, (_, i) in idx.items()} == model.index_rows
    assert max(len(i) for _, i in idx.values()) == summ["index_rows_max"] <= 150
    assert sum(len(i) - len(b) for b, i in idx.values()) == summ["halo_rows"]
    if s.halo > 0:
        assert summ["halo_rows"] > 0 and sizes.max() <= 150 * (1 - s.halo)
    else:
        assert summ["halo_rows"] == 0 and sizes.max() <= 150
    A, B = [], []
    differs = 0
    glob = NearestNeighbors(n_neighbors=5).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    for grp, (base, index) in idx.items():
        pos = np.searchsorted(index, base)
        nn = NearestNeighbors(n_neighbors=5).fit(X[index]).kneighbors(X[base], return_distance=False)
        for r, row in enumerate(base):
            mine = [j for j in nn[r] if j != pos[r]][:4]
            differs += set(index[mine]) != set(glob[row])
            for j in mine:
                A.append(X[row])
                B.append(X[index[j]])
    assert differs > 0  # in-index neighbours are not all global ones: the check below can fail
    A, B = np.array(A), np.array(B)
    P = out[["a", "b", "c"]].to_numpy()
    assert len(P) == 600 and (out["label"] == 1).all()
    AB = B - A
    den = (AB * AB).sum(1)
    for p in P:  # each new row: on some segment (base row, one of its k neighbours in its index)
        t = ((p - A) * AB).sum(1) / den
        ok = (t >= -1e-12) & (t <= 1 + 1e-12)
        resid = np.abs(A + t[:, None] * AB - p).max(1)
        assert (resid[ok] < 1e-9).any()


def _exact_recall(s, pdf):
    X = pdf.loc[pdf["label"] == 1, ["a", "b", "c"]].to_numpy()
    model = s.group_models_[1]
    idx = _indexes(model, X)
    g = model.assign(X)
    nn = NearestNeighbors(n_neighbors=5).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    return float(np.mean([np.isin(nn[r], idx[g[r]][1]).sum() / 4 for r in range(len(X))]))


def test_reported_recall_equals_exact_recall(grouped):
    s, pdf, _ = grouped
    exact = _exact_recall(s, pdf)
    rep = s.summary_["neighbour_recall"][1]
    assert rep["sample_rows"] == 600 and rep["k"] == 4
    assert rep["recall_at_k"] == pytest.approx(exact, abs=1e-6)
    assert 0.3 < exact < 1.0


def test_the_halo_finds_neighbours_the_cuts_separate(spark):
    """Same class, same index bound: with a halo more of each row's exact neighbours are searched."""
    plain, pdf, _ = _grouped_run(spark, 0.0)
    halo, _, _ = _grouped_run(spark, 0.6)
    r0, r1 = _exact_recall(plain, pdf), _exact_recall(halo, pdf)
    assert r1 > r0 + 0.1, (r0, r1)


def test_the_halo_histogram_is_counted_as_far_as_halos_reach_with_the_same_halos(spark, monkeypatch):
    """The counting pass fills the halo histogram only as far as the grouping sample predicts the
    widest halo: the halos, index sizes and new rows are those of the whole reach, and a guess that
    falls short is counted again, whole reach."""
    from imbal_spark.sampling import grouping

    guessed = grouping.halo_reach
    runs = {}
    for guess, reach in (("sample", guessed), ("whole", lambda *a: grouping.HALO_BINS), ("short", lambda *a: 1)):
        monkeypatch.setattr(grouping, "halo_reach", reach)
        s, pdf, out = _grouped_run(spark, 0.6)
        runs[guess] = (s.group_models_[1], _sorted_rows(out, ["a", "b", "c"]))
    whole = runs["whole"][0]
    assert not whole.merged and (whole.group_mult == 1).all()  # the counting pass's histogram is used
    assert whole.halo_bins.max() > 0 and not whole.halo_recounted
    sample, short = runs["sample"][0], runs["short"][0]
    assert whole.halo_bins.max() < sample.halo_reach_bins < grouping.HALO_BINS and not sample.halo_recounted
    assert short.halo_reach_bins == 1 and short.halo_recounted
    for guess in ("sample", "short"):
        m, rows = runs[guess]
        np.testing.assert_array_equal(m.halo_bins, whole.halo_bins)
        assert m.index_rows == whole.index_rows
        np.testing.assert_array_equal(rows, runs["whole"][1])


def test_params_checked_at_fit_time(spark):
    df = spark.createDataFrame([(0, 1.0), (1, 2.0)], "label long, a double")
    with pytest.raises(ConfigError, match="max_group_rows \\(4\\) must be at least k_neighbors \\+ 1 \\(6\\)"):
        SMOTE(max_group_rows=4).fit_resample(df)
    for bad in (1.0, -0.1, "0.5", True):
        with pytest.raises(ConfigError, match="halo must be a number from 0 to 0.9"):
            SMOTE(halo=bad).fit_resample(df)
    for bad in (-1, 131_073, 2.5):  # the driver holds the recall sample: it is bounded
        with pytest.raises(ConfigError, match="recall_sample must be an integer from 0 to 131,072"):
            SMOTE(recall_sample=bad).fit_resample(df)


def test_a_group_shared_out_over_query_parts_gives_the_same_rows(spark, monkeypatch):
    """A one-group class whose k-NN is split over tasks by query rows (3 parts of <= 256 rows)
    gives exactly imbalanced-learn's rows, as the one-task path does."""
    from imbal_spark.sampling import smote as smote_mod

    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(size=(1400, 4)), rng.normal(size=(700, 4)) * 0.7 + 1.0])
    y = np.array([0] * 1400 + [1] * 700)
    pdf = pd.DataFrame(X, columns=list("abcd")).assign(label=y, pos=np.arange(len(y)))
    X_res, _ = ImbSMOTE(k_neighbors=5, random_state=9).fit_resample(X, y)
    want = _rows(X_res[len(X):])
    df = spark.createDataFrame(pdf).repartition(3)
    monkeypatch.setattr(smote_mod, "SPLIT_PAIRS", 0)  # read on the driver when the parts are planned
    s = SMOTE(label_col="label", k_neighbors=5, random_state=9, id_cols=["pos"], order_col="pos")
    got = s.fit_resample(df).where("is_synthetic").select(*"abcd").toPandas().to_numpy()
    assert s.kernel_tasks_ == 3  # 700 rows: three 256-row query blocks
    assert np.array_equal(_rows(got), want)


def test_a_small_class_over_sampled_many_times_shares_out_its_draws(spark, monkeypatch):
    """30 rows over-sampled a hundredfold: more output than one task may write, and a single
    256-row query block. The parts split the draw positions instead (each searches the whole
    class) and together give exactly imbalanced-learn's rows."""
    from imbal_spark.sampling import smote as smote_mod

    rng = np.random.default_rng(6)
    X = np.vstack([rng.normal(size=(3000, 4)), rng.normal(size=(30, 4)) * 0.5 + 1.0])
    y = np.array([0] * 3000 + [1] * 30)
    pdf = pd.DataFrame(X, columns=list("abcd")).assign(label=y, pos=np.arange(len(y)))
    X_res, _ = ImbSMOTE(k_neighbors=5, random_state=3).fit_resample(X, y)
    df = spark.createDataFrame(pdf).repartition(2)
    monkeypatch.setattr(smote_mod, "GEN_VALUES", 4096)  # read on the driver: 2970 x 4 values -> 3 parts
    s = SMOTE(label_col="label", k_neighbors=5, random_state=3, id_cols=["pos"], order_col="pos")
    got = s.fit_resample(df).where("is_synthetic").select(*"abcd").toPandas().to_numpy()
    assert s.kernel_tasks_ == 3
    assert np.array_equal(_rows(got), _rows(X_res[len(X):]))


def _sorted_rows(pdf, cols):
    return pdf[cols].sort_values(cols, kind="mergesort").to_numpy()


@pytest.mark.parametrize("distinct,sample_rows", [(60, 64), (3000, 256)], ids=["few-distinct", "sampled"])
def test_a_class_larger_than_the_sample_is_cut_from_it_deterministically(spark, monkeypatch, distinct, sample_rows):
    """A class larger than the grouping sample (shrunk here) is cut from a hash-chosen sample; a
    class of few distinct rows (copies share a hash) takes the distinct rows of smallest hash.
    Counts are exact, new rows lie on segments between class rows, and the output does not
    depend on the partitioning."""
    from imbal_spark.sampling import grouping

    monkeypatch.setattr(grouping, "SAMPLE_ROWS", sample_rows)  # read on the driver
    rng = np.random.default_rng(21)
    vals = rng.normal(size=(distinct, 3)) * [3.0, 1.0, 0.5]
    mino = vals[np.arange(3000) % distinct]
    maj = rng.normal(size=(6000, 3)) * 3
    pdf = pd.DataFrame(np.vstack([maj, mino]), columns=list("abc")).assign(label=[0] * 6000 + [1] * 3000)
    outs, summaries = [], []
    for parts in (1, 4, 40):  # 40: the counting pass merges its partials on the executors first
        s = SMOTE(label_col="label", k_neighbors=3, random_state=5, max_group_rows=500, recall_sample=50)
        out = s.fit_resample(spark.createDataFrame(pdf).repartition(parts))
        new = out.where("is_synthetic").select("a", "b", "c", "label").toPandas()
        s.release()
        outs.append(_sorted_rows(new, list("abc")))
        g = s.summary_["groups"][1]
        assert len(new) == 3000 and (new["label"] == 1).all()
        assert g["groups"] >= 6 and g["index_rows_max"] <= 500 and g["halo_rows"] > 0
        assert s.summary_["neighbour_recall"][1]["sample_rows"] == 50
        summaries.append((s.summary_["groups"], s.summary_["neighbour_recall"]))
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    assert summaries[0] == summaries[1] == summaries[2]
    if distinct > 100:  # the segment check below is over every pair of distinct rows
        return
    A = vals[:, None, :]
    AB = vals[None, :, :] - A  # every pair (a, b) of distinct class rows
    for p in outs[0][:: max(1, len(outs[0]) // 300)]:  # each new row on some segment a -> b
        den = np.maximum((AB * AB).sum(-1), 1e-300)
        t = np.clip(((p - A) * AB).sum(-1) / den, 0, 1)
        assert np.abs(A + t[..., None] * AB - p).max(-1).min() < 1e-9


@pytest.mark.parametrize("blob,parts", [(1 << 20, 4), (7 * 3 * 8, 2)], ids=["one-blob-a-partition", "7-row-blobs"])
def test_the_class_sample_is_the_hash_chosen_rows_with_their_copies_counted(spark, monkeypatch, blob, parts):
    """The grouping sample reaches the driver in blobs (of about ``_BLOB_BYTES`` of numbers, shrunk
    here to 7 rows of 3 features), fetched a few partitions at a time into one array: it is exactly the class's rows whose
    hash falls under the threshold, made distinct with their copies counted, in (hash, values)
    order. Oracle: pandas over every row of the class and its Spark hash."""
    from imbal_spark.sampling import grouping

    monkeypatch.setattr(grouping, "_BLOB_BYTES", blob)
    monkeypatch.setattr(grouping, "_COLLECT_PARTS", parts)
    rng = np.random.default_rng(8)
    vals = rng.normal(size=(3000, 3))
    X = vals[rng.integers(0, 3000, size=4000)]  # copies of rows, in several partitions
    df = spark.createDataFrame(pd.DataFrame(X, columns=list("abc"))).repartition(5)
    S, n = grouping.class_sample(df, list("abc"), len(X), seed=11, rows=1000)
    every = df.select(grouping.sample_hash(11, list("abc")).alias("h"), "a", "b", "c").toPandas()
    kept = every[every["h"] < int(-(2 ** 63) + 1000 / 4000 * 2.0 ** 64)]
    want = kept.groupby(["h", "a", "b", "c"]).size().reset_index().sort_values(["h", "a", "b", "c"])
    assert 400 < len(want) < len(kept) < 1500  # a sample (not the small-sample fallback), with copies
    assert np.array_equal(S, want[["a", "b", "c"]].to_numpy())
    assert np.array_equal(n, want[0].to_numpy())
    # more rows than expected (every distinct row, ~2,600, into an array of 1,024 rows): it grows
    hashed = df.select(grouping.sample_hash(11, list("abc")).alias("_hash"), "a", "b", "c")
    S, n, _ = grouping._collect_packed(hashed, list("abc"), 0)
    whole = every.groupby(["h", "a", "b", "c"]).size().reset_index().sort_values(["h", "a", "b", "c"])
    assert len(whole) > 2000
    assert np.array_equal(S, whole[["a", "b", "c"]].to_numpy()) and np.array_equal(n, whole[0].to_numpy())


def test_copies_are_numbered_in_blocks_of_k_plus_one(spark):
    """Copies are dealt round the groups in blocks of k + 1 (the last takes the remainder): fewer
    than 2 (k + 1) copies stay together, so each keeps k copies as neighbours and gives back
    itself, as in imbalanced-learn; -0.0 and 0.0 are one value, for Spark and the hash alike."""
    from imbal_spark.sampling.grouping import DUP_COL, row_hash, with_copy_numbers

    copies = [(1.0, 5), (2.0, 12), (3.0, 13), (4.0, 1), (0.0, 4), (-0.0, 3)]  # not a dict: 0.0 == -0.0
    rows = [(v, 1.0) for v, c in copies for _ in range(c)]
    df = spark.createDataFrame(rows, "_x0 double, _x1 double").repartition(3)
    got = {}
    for r in with_copy_numbers(df, ["_x0", "_x1"], k=5).collect():
        got.setdefault(r["_x0"] + 0.0, []).append(r[DUP_COL])
    blocks = {v: sorted(b) for v, b in got.items()}
    assert blocks == {1.0: [0] * 5, 2.0: [0] * 6 + [1] * 6, 3.0: [0] * 6 + [1] * 7, 4.0: [0], 0.0: [0] * 7}
    assert row_hash(np.array([[-0.0, 1.0]]))[0] == row_hash(np.array([[0.0, 1.0]]))[0]


def test_a_class_of_one_row_copied_beyond_a_group_is_split_and_gives_that_row(spark):
    """Every row of the class identical (no axis to cut): the copies are numbered and split, and
    every new row is that row, as imbalanced-learn's would be."""
    pdf = pd.DataFrame({"a": [1.0] * 700 + list(np.arange(1400.0)), "b": [2.0] * 700 + [0.0] * 1400,
                        "label": [1] * 700 + [0] * 1400})
    s = SMOTE(label_col="label", max_group_rows=300, k_neighbors=5)
    new = s.fit_resample(spark.createDataFrame(pdf)).where("is_synthetic").select("a", "b").toPandas()
    s.release()
    Xr, _ = ImbSMOTE(k_neighbors=5, random_state=42).fit_resample(pdf[["a", "b"]].to_numpy(), pdf["label"].to_numpy())
    want = Xr[2100:]
    assert len(new) == len(want) == 700
    assert (new.to_numpy() == [1.0, 2.0]).all() and (want == [1.0, 2.0]).all()
    assert s.group_models_[1].salted and s.summary_["groups"][1]["rows_max"] <= 300


@pytest.mark.parametrize("order_col", [None, "pos"])
def test_more_copies_of_a_row_than_a_group_holds_are_dealt_round_the_groups(spark, order_col):
    """2,000 copies of one row in a class of 3,000 (all-zero rows of sparse data, say), groups of
    at most 500 rows: the copies are numbered and dealt round a hash-split cell's groups. Copies
    draw copies as neighbours, so a new row from a copy is that row, as in imbalanced-learn:
    counts exact, every group within max_group_rows, the share of new rows equal to the copied
    row as imbalanced-learn's, other new rows on segments between class rows, output independent
    of partitioning."""
    rng = np.random.default_rng(11)
    v = np.array([0.5, -1.0, 2.0])
    spread = rng.normal(size=(1000, 3)) * [3.0, 1.0, 0.5]
    mino = np.vstack([np.tile(v, (2000, 1)), spread])
    maj = rng.normal(size=(6000, 3)) * 3
    pdf = pd.DataFrame(np.vstack([maj, mino]), columns=list("abc")).assign(
        label=[0] * 6000 + [1] * 3000, pos=np.arange(9000))
    outs = []
    for parts in (1, 4):
        s = SMOTE(label_col="label", k_neighbors=3, random_state=5, max_group_rows=500, recall_sample=50,
                  id_cols=["pos"], order_col=order_col)
        out = s.fit_resample(spark.createDataFrame(pdf).repartition(parts))
        new = out.where("is_synthetic").select("a", "b", "c", "label").toPandas()
        s.release()
        assert s.group_models_[1].salted
        g = s.summary_["groups"][1]
        assert len(new) == 3000 and (new["label"] == 1).all()
        assert g["groups"] >= 6 and g["rows_max"] <= 500 and g["index_rows_max"] <= 500
        outs.append(_sorted_rows(new, list("abc")))
    assert np.array_equal(outs[0], outs[1])
    got = outs[0]
    copies = (got == v).all(axis=1).sum()
    Xr, _ = ImbSMOTE(k_neighbors=3, random_state=5).fit_resample(np.vstack([maj, mino]), pdf["label"].to_numpy())
    want = (Xr[9000:] == v).all(axis=1).sum()
    # each is ~Binomial(3000, 2/3) (sd ~26): the same law, not the same draws
    assert abs(copies - 2000) < 130 and abs(want - 2000) < 130
    others = got[~(got == v).all(axis=1)]
    vals = np.vstack([v, spread])
    A = vals[:, None, :]
    AB = vals[None, :, :] - A
    den = np.maximum((AB * AB).sum(-1), 1e-300)
    for p in others[:: max(1, len(others) // 40)]:  # each new row on some segment a -> b
        t = np.clip(((p - A) * AB).sum(-1) / den, 0, 1)
        assert np.abs(A + t[..., None] * AB - p).max(-1).min() < 1e-9




# -- the probed search of a split class ----------------------------------------------------------

def _probed_run(spark, monkeypatch, probe):
    """12,000 minority rows of 16 features in ~5 groups (k-NN indexes of up to 8,000 rows); the
    driver's cell constants shrunk so that each index is cut into ~80 cells (a worker's kernel
    gets the cells from the plan, so only the driver's constants matter)."""
    from imbal_spark.sampling import grouping

    monkeypatch.setattr(grouping, "PROBE_CELL_ROWS", 100)
    monkeypatch.setattr(grouping, "PROBE_MIN_CELLS", 16)
    rng = np.random.default_rng(21)
    d = 16
    X = np.vstack([rng.normal(size=(12_500, d)) * 2.0,
                   rng.normal(size=(12_000, d)) * rng.uniform(0.5, 2, size=d) + 1.0])
    cols = [f"f{j}" for j in range(d)]
    pdf = pd.DataFrame(X, columns=cols)
    pdf["label"] = [0] * 12_500 + [1] * 12_000
    s = SMOTE(label_col="label", k_neighbors=5, random_state=7, max_group_rows=8000, halo=0.6,
              sampling_strategy={1: 12_300}, recall_sample=12_000, probe=probe)
    out = s.fit_resample(spark.createDataFrame(pdf).repartition(4)).where("is_synthetic").select(*cols).toPandas()
    s.release()
    return s, pdf[pdf["label"] == 1][cols].to_numpy(), out.to_numpy()


def _probed_tables(s, X, k=5):
    """Per group, as the kernel sees it (base rows then halo, each in canonical order): the base
    rows, their neighbours by the oracle (exact over the rows of their probed cells; over the
    whole index when it probes nothing or the cells hold too few rows), and the index rows of every
    row's probed cells (all the index when not probed)."""
    from imbal_spark.sampling._kernel import nearest_cells

    model = s.group_models_[1]
    r, g, h = model.members(X)
    out = {}
    for grp in np.unique(g):
        base, halo = r[(g == grp) & ~h], r[(g == grp) & h]
        base = base[np.lexsort(X[base].T[::-1])]
        halo = halo[np.lexsort(X[halo].T[::-1])]
        index = np.concatenate([base, halo])
        Xg = X[index]
        if int(grp) in model.probe_cells:
            C, n_probe = model.probe_cells[int(grp)]
            cells, probes = nearest_cells(Xg, C, 0, len(base), n_probe)
            reach = np.stack([np.isin(cells, p) for p in probes])
            reach[reach.sum(axis=1) < k + 1 + 8] = True
        else:
            reach = np.ones((len(base), len(index)), dtype=bool)
        D = ((Xg[:len(base), None, :] - Xg[None, :, :]) ** 2).sum(-1)
        D[~reach] = np.inf
        nn = np.argsort(D, axis=1, kind="stable")[:, 1:k + 1]
        out[int(grp)] = (base, index[nn], reach, index)
    return out


def _recall_with_probes(X, tables, k=5):
    glob = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    hits = np.zeros(len(X))
    for base, _, reach, index in tables.values():
        pos = np.full(len(X), -1)
        pos[index] = np.arange(len(index))
        for i, row in enumerate(base):
            p = pos[glob[row]]
            hits[row] = ((p >= 0) & reach[i, np.maximum(p, 0)]).sum() / k
    return float(hits.mean())


def test_probed_search_of_a_split_class_uses_and_reports_the_probed_neighbours(spark, monkeypatch):
    s, X, new = _probed_run(spark, monkeypatch, 0.15)
    summ = s.summary_["groups"][1]
    assert summ["groups"] >= 4 and summ["probed_groups"] == summ["groups"] and summ["cells_max"] >= 60
    tables = _probed_tables(s, X)
    # every new row lies on a segment from a base row to one of its probed neighbours
    A = np.concatenate([np.repeat(X[b], 5, axis=0) for b, _, _, _ in tables.values()])
    B = np.concatenate([X[nn.ravel()] for _, nn, _, _ in tables.values()])
    exact = NearestNeighbors(n_neighbors=6)  # searched over their whole index, rows find others
    differs = 0
    for base, nn, _, index in tables.values():
        e = exact.fit(X[index]).kneighbors(X[base], return_distance=False)[:, 1:]
        differs += sum(set(a) != set(b) for a, b in zip(index[e], nn))
    assert differs > 100, differs  # the check below can fail
    assert len(new) == 300
    AB = B - A
    den = (AB * AB).sum(1)
    for p in new:
        t = ((p - A) * AB).sum(1) / den
        ok = (t >= -1e-12) & (t <= 1 + 1e-12)
        assert (np.abs(A + t[:, None] * AB - p).max(1)[ok] < 1e-9).any()
    # the reported recall counts the probes: equal to the oracle's over every row of the class
    probed = _recall_with_probes(X, tables)
    rep = s.summary_["neighbour_recall"][1]
    assert rep["sample_rows"] == 12_000
    assert rep["recall_at_k"] == pytest.approx(probed, abs=1e-6)
    # searching every row of each index: no cells, and a higher recall, measured the same way
    s1, X1, _ = _probed_run(spark, monkeypatch, 1.0)
    assert s1.summary_["groups"][1]["probed_groups"] == 0
    whole_recall = _recall_with_probes(X1, _probed_tables(s1, X1))
    assert s1.summary_["neighbour_recall"][1]["recall_at_k"] == pytest.approx(whole_recall, abs=1e-6)
    assert whole_recall > probed + 0.01, (whole_recall, probed)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, True, "0.2"])
def test_probe_outside_zero_to_one_is_refused(spark, bad):
    df = spark.createDataFrame([(0, 1.0), (1, 2.0)], "label long, a double")
    with pytest.raises(ConfigError, match="probe must be a number above 0 and at most 1"):
        SMOTE(probe=bad).fit_resample(df)


def test_packed_rows_come_back_bit_for_bit_through_arrow_ipc_and_slices():
    """The kernel's packed features: every float64 (signed zeros, subnormals, extremes) comes back
    with the same bits, from a chunked column of sliced arrays as from one array, after an Arrow
    IPC round trip (how batches cross between the JVM and Python)."""
    import pyarrow as pa

    from imbal_spark.sampling.smote import pack_rows, unpack_rows

    rng = np.random.default_rng(5)
    X = rng.standard_normal((1000, 7)) * 10.0 ** rng.integers(-300, 300, size=(1000, 7))
    X[0] = [-0.0, 0.0, 5e-324, -1.7976931348623157e308, 1.0, -1.0, 2.0 ** -1074]
    arr = pack_rows(X[::2])  # a strided view is packed as its values
    got = unpack_rows(arr, 7)
    assert np.array_equal(got.view(np.int64), np.ascontiguousarray(X[::2]).view(np.int64))
    batch = pa.RecordBatch.from_arrays([pack_rows(X)], names=["_xb"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch.slice(0, 300))
        w.write_batch(batch.slice(300))
    table = pa.ipc.open_stream(sink.getvalue()).read_all()
    assert table.column("_xb").num_chunks == 2
    assert np.array_equal(unpack_rows(table.column("_xb"), 7).view(np.int64), X.view(np.int64))
    sliced = pa.chunked_array([batch.column(0).slice(10, 5), batch.column(0).slice(700, 300)])
    assert np.array_equal(unpack_rows(sliced, 7).view(np.int64), np.concatenate([X[10:15], X[700:]]).view(np.int64))
    large = pa.chunked_array([batch.column(0).slice(3, 50).cast(pa.large_binary())])
    assert np.array_equal(unpack_rows(large, 7).view(np.int64), X[3:53].view(np.int64))
    assert unpack_rows(pa.chunked_array([], pa.binary()), 7).shape == (0, 7)
    with pytest.raises(ValueError, match="7 values"):
        unpack_rows(pack_rows(X[:, :6]), 7)


def test_large_var_types_give_the_same_rows(spark):
    """With Spark sending binary columns as Arrow large binary (int64 offsets), the kernel reads
    its packed rows the same: a one-group class and a split class give the rows they give by
    default."""
    rng = np.random.default_rng(4)
    pdf = pd.DataFrame(rng.normal(size=(900, 3)), columns=["a", "b", "c"]).assign(label=[0] * 600 + [1] * 300)
    df = spark.createDataFrame(pdf).repartition(3)
    runs = []
    for large in ("false", "true"):
        spark.conf.set("spark.sql.execution.arrow.useLargeVarTypes", large)
        try:
            for mg in (100_000, 120):
                s = SMOTE(label_col="label", k_neighbors=4, random_state=3, max_group_rows=mg)
                out = s.fit_resample(df).where("is_synthetic").select("a", "b", "c").toPandas()
                runs.append((s.summary_["groups"][1]["groups"], sorted(map(tuple, out.to_numpy()))))
                s.release()
        finally:
            spark.conf.unset("spark.sql.execution.arrow.useLargeVarTypes")
    assert [r[0] for r in runs] == [1, runs[1][0], 1, runs[1][0]] and runs[1][0] > 1
    assert runs[0] == runs[2] and runs[1] == runs[3] and len(runs[1][1]) == 300


def test_a_one_group_class_beside_a_split_class_gives_its_own_rows(spark):
    """Three classes, one split into groups and one kept whole: the whole class's new rows (its
    features packed to share the kernel's input with the split class) are the rows it gets when
    no class is split."""
    rng = np.random.default_rng(8)
    pdf = pd.DataFrame(rng.normal(size=(1400, 3)), columns=["a", "b", "c"])
    pdf["label"] = ["big"] * 1000 + ["split"] * 300 + ["whole"] * 100
    df = spark.createDataFrame(pdf).repartition(3)

    def rows(max_group_rows):
        s = SMOTE(label_col="label", k_neighbors=4, random_state=3, max_group_rows=max_group_rows)
        out = s.fit_resample(df).where("is_synthetic").toPandas()
        groups = {c: g["groups"] for c, g in s.summary_["groups"].items()}
        s.release()
        return groups, {c: sorted(map(tuple, o[["a", "b", "c"]].to_numpy())) for c, o in out.groupby("label")}

    g_all, whole = rows(100_000)
    g_mixed, mixed = rows(150)
    assert g_all == {"split": 1, "whole": 1} and g_mixed["split"] > 1 and g_mixed["whole"] == 1
    assert mixed["whole"] == whole["whole"] and len(whole["whole"]) == 900
    assert len(mixed["split"]) == 700 and mixed["split"] != whole["split"]
