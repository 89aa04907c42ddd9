"""One battery run over every sampler (as imbalanced-learn's check_samplers_*): counts equal the
resolved strategy, schema kept, original rows kept unchanged, new rows shaped as documented,
same output whatever the partitioning, named errors on bad input."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from imblearn.utils import check_sampling_strategy as imb_check
from pyspark.sql import functions as F

from imbal_spark.errors import ConfigError, ImbalSparkError, InputError, MissingColumnError
from imbal_spark.sampling import SMOTE, RandomOverSampler, RandomUnderSampler

FEATS = ["f0", "f1", "f2"]
COUNTS = {0: 150, 1: 60, 2: 25}

SAMPLERS = {
    "smote": lambda **kw: SMOTE(label_col="label", k_neighbors=3, id_cols=["id"], **kw),
    # classes above 40 rows are split into groups: the partitioned path
    "smote_grouped": lambda **kw: SMOTE(label_col="label", k_neighbors=3, id_cols=["id"],
                                        max_group_rows=40, **kw),
    "random_over": lambda **kw: RandomOverSampler(label_col="label", id_cols=["id"], **kw),
    "random_over_buckets": lambda **kw: RandomOverSampler(label_col="label", id_cols=["id"],
                                                          max_group_rows=40, **kw),
    "random_under": lambda **kw: RandomUnderSampler(label_col="label", id_cols=["id"], **kw),
}


def _pdf():
    rng = np.random.default_rng(0)
    parts = []
    start = 0
    for c, n in COUNTS.items():
        X = rng.normal(loc=2.0 * c, size=(n, 3))
        parts.append(pd.DataFrame({
            "id": np.arange(start, start + n, dtype=np.int64),
            "f0": X[:, 0], "f1": X[:, 1], "f2": X[:, 2],
            "city": [f"c{i % 4}" for i in range(n)],
            "ts": [dt.datetime(2024, 1, 1) + dt.timedelta(hours=i) for i in range(n)],
            "label": np.full(n, c, dtype=np.int64)}))
        start += n
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def data(spark):
    df = spark.createDataFrame(_pdf()).repartition(3).cache()
    df.count()
    yield df
    df.unpersist()


def _sorted(pdf):
    cols = [c for c in pdf.columns]
    return pdf.sort_values(cols, na_position="first", kind="mergesort").reset_index(drop=True)


def _y(counts):
    return np.concatenate([np.full(n, c) for c, n in counts.items()])


COUNT_CASES = [(name, strategy) for name in SAMPLERS if name != "smote_grouped"
               for strategy in ("auto", "not minority", {0: 30, 1: 60})] + [("smote_grouped", "all")]


@pytest.mark.parametrize("name,strategy", COUNT_CASES)
def test_counts_equal_the_resolved_strategy(spark, data, name, strategy):
    s = SAMPLERS[name](sampling_strategy=strategy, random_state=1)
    kind = "over-sampling" if name != "random_under" else "under-sampling"
    try:
        want = {int(k): int(v) for k, v in imb_check(strategy, _y(COUNTS), kind).items()}
    except ValueError:  # imbalanced-learn refuses it: so must we
        with pytest.raises(ImbalSparkError):
            s.fit_resample(data)
        return
    out = s.fit_resample(data)
    assert dict(s.sampling_strategy_) == want
    by = out.groupBy("label", "is_synthetic").count().collect()  # one action for both checks
    got = {}
    for r in by:
        got[r["label"]] = got.get(r["label"], 0) + r["count"]
    n_syn = sum(r["count"] for r in by if r["is_synthetic"])
    if kind == "over-sampling":
        expected = {c: n + want.get(c, 0) for c, n in COUNTS.items()}
    else:
        expected = {c: want.get(c, n) for c, n in COUNTS.items()}
    assert got == expected
    assert s.summary_["counts_after"] == expected and s.summary_["counts_before"] == COUNTS
    assert n_syn == (sum(want.values()) if kind == "over-sampling" else 0)
    s.release()


@pytest.mark.parametrize("name", SAMPLERS)
def test_schema_kept_originals_unchanged_new_rows_null_elsewhere(spark, data, name):
    s = SAMPLERS[name](random_state=3)
    out = s.fit_resample(data)
    assert out.columns == data.columns + ["is_synthetic"]
    assert [f.dataType for f in out.schema.fields[:-1]] == [f.dataType for f in data.schema.fields]
    orig = out.where(~F.col("is_synthetic")).drop("is_synthetic")
    # every kept row is an input row, unchanged (exceptAll counts duplicates)
    assert orig.exceptAll(data).count() == 0
    if name != "random_under":
        assert data.exceptAll(orig).count() == 0
    else:
        # the minority class is not targeted by 'auto': all of its rows are kept
        assert orig.where("label = 2").exceptAll(data.where("label = 2")).count() == 0
        assert orig.where("label = 2").count() == 25
    new = out.where("is_synthetic")
    if name == "random_under":
        assert new.count() == 0
        return
    assert new.count() > 0
    nulls = new.select(*[F.sum(F.col(c).isNull().cast("int")).alias(c) for c in ("id", "city", "ts", "label")]).first()
    assert (nulls["id"], nulls["city"], nulls["ts"]) == (new.count(),) * 3 and nulls["label"] == 0
    if name.startswith("random_over"):
        # a copied row has the features of an input row of its class
        assert new.select("label", *FEATS).subtract(data.select("label", *FEATS)).count() == 0
    s.release()


@pytest.mark.parametrize("name", SAMPLERS)
def test_same_output_whatever_the_partitioning(spark, data, name):
    def run(df, seed=5):
        s = SAMPLERS[name](random_state=seed)
        pdf = s.fit_resample(df).toPandas()
        s.release()
        return _sorted(pdf)

    a = run(data)
    old = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        spark.conf.set("spark.sql.shuffle.partitions", "5")
        b = run(data.repartition(7, "f1"))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", old)
    c = run(data.coalesce(1))
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    d = run(data, seed=6)
    assert not a.equals(d)  # the seed matters


@pytest.mark.parametrize("name", ["random_over", "random_over_buckets"])
def test_random_over_sampler_shares_a_large_output_over_parts_with_the_same_rows(spark, data, name, monkeypatch):
    """Outputs too large for one task are shared out by draw position, each part replaying its
    bucket's draw in chunks: the rows are those of one part and one chunk."""
    from imbal_spark.sampling import smote as smote_mod

    def run():
        s = SAMPLERS[name](random_state=8)
        pdf = s.fit_resample(data).toPandas()
        s.release()
        return _sorted(pdf)

    one = run()
    monkeypatch.setattr(smote_mod, "GEN_VALUES", 64)   # read on the driver: tens of parts per bucket
    monkeypatch.setattr(smote_mod, "OUT_VALUES", 16)   # a few rows per output frame
    pd.testing.assert_frame_equal(run(), one)


@pytest.mark.parametrize("make", [RandomUnderSampler, RandomOverSampler, SMOTE], ids=["under", "over", "smote"])
def test_samplers_refuse_1001_classes_and_blame_a_null_label_beside_1000(spark, make):
    df = spark.range(3003).select((F.col("id") % 1001).alias("label"), F.col("id").cast("double").alias("f0"))
    with pytest.raises(InputError, match="label column 'label' has more than 1000 distinct values"):
        make(label_col="label").fit_resample(df)
    nulls = df.select(F.when(F.col("label") < 1000, F.col("label")).alias("label"), "f0")
    with pytest.raises(InputError, match=r"label column 'label' has 3 null value\(s\)"):
        make(label_col="label").fit_resample(nulls)


@pytest.mark.parametrize("name", ["smote_grouped", "random_over_buckets"])
def test_a_class_cut_into_more_groups_than_the_limit_names_the_setting_that_fits(spark, data, name, monkeypatch):
    """Groups per class are bounded (the driver's plan, the counters and expressions grow with
    them): a max_group_rows that cuts class 0 (150 rows) too finely is refused before any pass,
    naming the smallest max_group_rows that fits, which then runs and cuts at most that many."""
    import re

    from imbal_spark.sampling import base

    monkeypatch.setattr(base, "MAX_GROUPS", 4)  # read on the driver
    make = SMOTE if name == "smote_grouped" else RandomOverSampler
    kw = dict(label_col="label", id_cols=["id"], sampling_strategy={0: 300}, random_state=1)
    if make is SMOTE:
        kw["k_neighbors"] = 3
    with pytest.raises(ConfigError, match=r"class 0 has 150 rows: max_group_rows=40 would cut it into \d+ groups, "
                                          r"more than 4; raise --max-group-rows to at least \d+") as e:
        make(max_group_rows=40, **kw).fit_resample(data)
    need = int(re.search(r"at least (\d+)", str(e.value)).group(1))
    s = make(max_group_rows=need, **kw)
    assert s.fit_resample(data).where("label = 0").count() == 300
    assert 1 < s.groups_[0]["groups"] <= 4
    with pytest.raises(ConfigError, match="at least"):
        make(max_group_rows=need - 1, **kw).fit_resample(data)


def _with(spark, data, **changes):
    pdf = _pdf()
    for k, v in changes.items():
        v(pdf)
    return spark.createDataFrame(pdf)


@pytest.mark.parametrize("name", [n for n in SAMPLERS if n != "smote_grouped"])
def test_bad_inputs_raise_named_errors(spark, data, name):
    make = SAMPLERS[name]
    empty = data.limit(0)
    with pytest.raises(InputError, match="no rows"):
        make().fit_resample(empty)
    with pytest.raises(InputError, match="more than 1 class.*only 0"):
        make().fit_resample(data.where("label = 0"))
    with pytest.raises(MissingColumnError, match="label column 'target'"):
        type(make())(label_col="target").fit_resample(data)
    with pytest.raises(ConfigError, match="'sometimes' is not known"):
        make(sampling_strategy="sometimes").fit_resample(data)
    nulllab = data.withColumn("label", F.when(F.col("id") == 3, None).otherwise(F.col("label")))
    with pytest.raises(InputError, match="label column 'label' has 1 null"):
        make().fit_resample(nulllab)
    with pytest.raises(MissingColumnError, match="feature column 'nope'"):
        make(features=["f0", "nope"]).fit_resample(data)
    with pytest.raises(ConfigError, match="random_state"):
        make(random_state=-1).fit_resample(data)


def test_smote_bad_feature_values_name_column_and_count(spark, data):
    make = SAMPLERS["smote"]
    bad = (data.withColumn("f1", F.when(F.col("id").isin(1, 2), float("nan")).otherwise(F.col("f1")))
           .withColumn("f2", F.when(F.col("id") == 200, float("inf")).when(F.col("id") == 201, None)
                       .otherwise(F.col("f2"))))
    with pytest.raises(InputError, match="'f1' \\(2 rows\\), 'f2' \\(2 rows\\)"):
        make().fit_resample(bad)
    with pytest.raises(InputError, match="feature column 'city' has type string, not a number"):
        make(features=["f0", "city"]).fit_resample(data)
    small = data.where("label != 2 or id < 213")  # class 2 keeps 3 rows
    with pytest.raises(InputError, match="class 2 has 3 rows, too few for SMOTE with k_neighbors=3 .*--k-neighbors 2"):
        make().fit_resample(small)
    with pytest.raises(ConfigError, match="k_neighbors must be an integer >= 1"):
        SMOTE(k_neighbors=0).fit_resample(data)


def test_random_samplers_accept_nan_and_strings_like_imbalanced_learn(spark, data):
    nan = data.withColumn("f1", F.when(F.col("id") < 5, float("nan")).otherwise(F.col("f1")))
    out = RandomUnderSampler(label_col="label", id_cols=["id"]).fit_resample(nan)
    assert {r["label"]: r["count"] for r in out.groupBy("label").count().collect()} == {0: 25, 1: 25, 2: 25}
    over = RandomOverSampler(label_col="label", id_cols=["id"]).fit_resample(nan)
    new = over.where("is_synthetic")
    assert new.where(F.col("city").isNull()).count() == new.count() == 90 + 125  # not a feature
    listed = RandomOverSampler(label_col="label", features=["f0", "city"]).fit_resample(nan)
    copies = listed.where("is_synthetic")
    assert copies.where(F.col("city").isNull() | F.col("f1").isNotNull()).count() == 0
    assert copies.select("label", "f0", "city").subtract(data.select("label", "f0", "city")).count() == 0


def test_under_sampler_exact_even_when_the_cut_falls_in_identical_rows(spark):
    rows = [(0, 1.0, 1.0)] * 120 + [(1, float(i), 0.0) for i in range(30)]
    df = spark.createDataFrame(rows, "label long, a double, b double").repartition(4)
    for seed in (1, 2):
        out = RandomUnderSampler(label_col="label", random_state=seed).fit_resample(df)
        assert {r["label"]: r["count"] for r in out.groupBy("label").count().collect()} == {0: 30, 1: 30}


def test_under_sampler_draws_copies_of_one_row_one_by_one(spark):
    """Class 0: 1,000 copies of one row and 1,000 distinct rows, cut to 500. imbalanced-learn keeps
    each of the 2,000 rows with the same chance, so the copies it keeps follow the hypergeometric
    law (mean 250, sd 9.7). Copies used to share their keys: all kept, none kept, or the cut's
    remainder (0 with chance 1/2, else uniform over 1..500)."""
    from imblearn.under_sampling import RandomUnderSampler as ImbRUS
    from scipy.stats import hypergeom

    rows = ([(0, 1.0, 1.0)] * 1000 + [(0, float(i), 0.0) for i in range(1000)]
            + [(1, float(i), 5.0) for i in range(500)])
    pdf = pd.DataFrame(rows, columns=["label", "a", "b"])
    lo, hi = hypergeom(M=2000, n=1000, N=500).interval(1 - 1e-6)
    # the oracle: imbalanced-learn's copies kept lie in that interval
    for seed in range(20):
        Xr, _ = ImbRUS(random_state=seed).fit_resample(pdf[["a", "b"]], pdf["label"])
        assert lo <= ((Xr["a"] == 1.0) & (Xr["b"] == 1.0)).sum() <= hi
    df = spark.createDataFrame(pdf).repartition(4).cache()
    got = []
    for seed in range(6):
        sampler = RandomUnderSampler(label_col="label", random_state=seed)
        out = sampler.fit_resample(df)
        assert {r["label"]: r["count"] for r in out.groupBy("label").count().collect()} == {0: 500, 1: 500}
        assert out.drop("is_synthetic").exceptAll(df).count() == 0  # every kept row is an input row
        got.append(out.where("a = 1.0 AND b = 1.0").count())
        assert "number copies of identical rows" in sampler.summary_["timings"]
        if seed == 0:  # the same rows whatever the partitioning (copies numbered by a window)
            one = RandomUnderSampler(label_col="label", random_state=0).fit_resample(df.coalesce(1))
            pd.testing.assert_frame_equal(_sorted(out.toPandas()), _sorted(one.toPandas()))
        sampler.release()
    assert all(lo <= g <= hi for g in got), (got, lo, hi)
    assert len(set(got)) > 1  # drawn, not fixed
    df.unpersist()


def test_under_sampler_without_copies_shuffles_no_rows(spark, data):
    """Rows all distinct (the usual case): the threshold pass finds no copies, nothing is
    numbered or cached, and each class keeps its n rows of smallest content keys (k1, k2)."""
    from imbal_spark.sampling.random import row_keys

    sampler = RandomUnderSampler(label_col="label", id_cols=["id"], random_state=5)
    out = sampler.fit_resample(data)
    assert getattr(sampler, "_cached", []) == []
    assert "number copies of identical rows" not in sampler.summary_["timings"]
    k1, k2 = row_keys(data, 5)
    keys = data.select("id", "label", k1.alias("k1"), k2.alias("k2")).toPandas()
    n = min(COUNTS.values())
    want = set(keys.sort_values(["k1", "k2"]).groupby("label").head(n)["id"])
    assert set(out.toPandas()["id"]) == want and out.count() == 3 * n


def test_a_strategy_key_written_1_0_or_true_names_label_1_exactly_as_1_does(spark, data):
    """{1.0: n} and {True: n} name the integer label 1, as in imbalanced-learn (1.0 == True == 1):
    the same rows as {1: n} (not another seed; True used to fail in Spark)."""
    def rows(key):
        out = RandomOverSampler(label_col="label", id_cols=["id"], random_state=3,
                                sampling_strategy={key: 70}).fit_resample(data)
        return _sorted(out.where("is_synthetic").select("f0", "f1", "label").toPandas())

    want = rows(1)
    assert len(want) == 70 - COUNTS[1] and (want["label"] == 1).all()
    for key in (1.0, True):
        pd.testing.assert_frame_equal(rows(key), want)


def test_random_over_sampler_copies_a_vector_feature_column(spark, data):
    from pyspark.ml.functions import array_to_vector

    vec = data.select("id", array_to_vector(F.array(*FEATS)).alias("features"), "label")
    out = RandomOverSampler(label_col="label", id_cols=["id"], random_state=4).fit_resample(vec)
    assert dict(out.dtypes)["features"] == "vector"
    new = out.where("is_synthetic").select("label", "features").toPandas()
    assert len(new) == 90 + 125
    have = {(r["label"], tuple(r["features"].toArray())) for r in vec.collect()}
    assert all((r.label, tuple(r.features.toArray())) in have for r in new.itertuples())


def _map_rows(spark, n0, n1):
    """Rows equal in every column but a map and a variant, the maps built in two entry orders."""
    return spark.range(n0 + n1).selectExpr(
        f"cast(id >= {n0} as int) as label", "1.5 as f0",
        "if(id % 2 = 0, map('i', id, 'z', 0), map('z', 0, 'i', id)) as attrs",
        "named_struct('tags', array(map('t', id % 7))) as meta",
        "parse_json(concat('{\"i\":', id, ',\"z\":0}')) as doc")


def test_maps_and_variants_are_hashed_by_content(spark):
    """Equal maps give equal keys whatever their entry order, different maps (also nested in a
    struct's array) or variants different keys; Spark refuses to hash either as they are."""
    from imbal_spark.sampling.random import row_keys

    df = spark.sql(
        "select map('a', 1, 'b', 2) as m, array(map('x', 1.0)) as am, "
        "map('p', map('q', 1)) as mm, parse_json('{\"a\":1,\"b\":2}') as v union all "
        "select map('b', 2, 'a', 1), array(map('x', 1.0)), map('p', map('q', 1)), parse_json('{\"b\":2,\"a\":1}') union all "
        "select map('a', 1, 'b', 3), array(map('x', 1.0)), map('p', map('q', 1)), parse_json('{\"a\":1,\"b\":2}') union all "
        "select map('a', 1, 'b', 2), array(map('x', 2.0)), map('p', map('q', 1)), parse_json('{\"a\":1,\"b\":2}') union all "
        "select map('a', 1, 'b', 2), array(map('x', 1.0)), map('p', map('q', 2)), parse_json('{\"a\":1,\"b\":2}') union all "
        "select map('a', 1, 'b', 2), array(map('x', 1.0)), map('p', map('q', 1)), parse_json('{\"a\":1,\"b\":9}')")
    k1, k2 = row_keys(df, 3)
    keys = [(r.k1, r.k2) for r in df.select(k1.alias("k1"), k2.alias("k2")).collect()]
    assert keys[0] == keys[1]  # the same content, entries listed in another order
    assert len(set(keys[1:])) == 5  # every other row differs in one nested value


@pytest.mark.parametrize("a,b", [
    # Spark's hash skips nulls and chains nested elements without lengths: each pair hashed alike
    ("1 as x, cast(null as int) as y", "cast(null as int) as x, 1 as y"),
    ("5L as x, cast(null as bigint) as y, 7L as z", "2L as x, 5L as y, 7L as z"),  # flags not a value
    ("1L as x, cast(null as bigint) as y", "1L as x, 2L as y"),
    ("map('a', cast(null as string), 'b', 'c') as m", "map('a', 'b', 'c', cast(null as string)) as m"),
    ("cast(null as map<string,int>) as m", "cast(map() as map<string,int>) as m"),
    ("array(map('a', 1, 'b', 2)) as m", "array(map('a', 1), map('b', 2)) as m"),
    ("map('a', 1) as m, cast(map() as map<string,int>) as n", "cast(map() as map<string,int>) as m, map('a', 1) as n"),
    ("array(array(1, 2), array()) as m", "array(array(1), array(2)) as m"),
    ("cast(null as array<int>) as m", "cast(array() as array<int>) as m"),
    ("array(cast(null as int), 1) as m", "array(1, cast(null as int)) as m"),
    ("named_struct('p', cast(null as int), 'q', 1) as s", "named_struct('p', 1, 'q', cast(null as int)) as s"),
    ("cast(null as struct<p:int>) as s", "named_struct('p', cast(null as int)) as s"),
    ("parse_json('1') as v", "parse_json('\"1\"') as v"),
])
def test_rows_that_differ_get_different_keys(spark, a, b):
    """Each pair of rows differs in one value that Spark's own hash cannot see (a null's place,
    an element boundary, a map, a variant's type); their content keys differ, and each row's
    keys are the same on a second computation."""
    from imbal_spark.sampling.random import row_keys

    df = spark.sql(f"select {a} union all select {b}")
    k1, k2 = row_keys(df, 3)
    keys = [(r.k1, r.k2) for r in df.select(k1.alias("k1"), k2.alias("k2")).collect()]
    assert keys[0] != keys[1]
    assert keys == [(r.k1, r.k2) for r in df.select(k1.alias("k1"), k2.alias("k2")).collect()]


def test_rows_of_plain_columns_without_nulls_keep_spark_hash_keys(spark, data):
    """Rows of plain columns without nulls keep the keys Spark's own hash gives them (so their
    splits and samples are those of earlier versions); a row with a null gets another key."""
    from imbal_spark.sampling.random import _SALT1, row_keys

    k1, _ = row_keys(data, 5)
    cols = [F.col(c) for c in data.columns]
    same = data.select((k1 == F.xxhash64(F.lit(5), F.lit(_SALT1), *cols)).alias("eq")).toPandas()
    assert same["eq"].all() and len(same) == sum(COUNTS.values())
    one = data.limit(1)
    with_null = one.withColumn("city", F.lit(None).cast("string"))
    assert one.select(k1).first()[0] != with_null.select(row_keys(with_null, 5)[0]).first()[0]


def test_content_keys_of_maps_of_unordered_values_and_variant_timestamps(spark):
    """Map values that Spark cannot order (intervals) are sorted by key alone; a variant's
    timestamp is written in UTC, so the keys do not move with the session time zone."""
    from imbal_spark.sampling.random import row_keys

    df = spark.sql("select map('b', make_interval(1, 2), 'a', make_interval(0, 1)) as m, "
                   "to_variant_object(named_struct('t', timestamp'2024-01-01 10:00:00')) as v union all "
                   "select map('a', make_interval(0, 1), 'b', make_interval(1, 2)), "
                   "to_variant_object(named_struct('t', timestamp'2024-01-01 10:00:00'))")
    k1, _ = row_keys(df, 3)
    tz = spark.conf.get("spark.sql.session.timeZone")
    try:
        got = {}
        for zone in ("UTC", "Asia/Tokyo"):
            spark.conf.set("spark.sql.session.timeZone", zone)
            got[zone] = [r.k for r in df.select(k1.alias("k")).collect()]
    finally:
        spark.conf.set("spark.sql.session.timeZone", tz)
    assert got["UTC"][0] == got["UTC"][1] and got["UTC"] == got["Asia/Tokyo"]


def test_rows_differing_only_in_a_map_are_not_copies_in_under_sampling(spark):
    """300 rows of class 0 that differ only in a map column (and a variant one) are distinct rows:
    no copies to number, and the 100 kept are those of smallest content key, the same rows
    whatever the partitioning (they used to share one key, so the window's order chose them)."""
    from imbal_spark.sampling.random import row_keys

    df = _map_rows(spark, 300, 100)
    rid = F.col("attrs")["i"].alias("rid")
    kept = []
    for parts in (1, 4):
        sampler = RandomUnderSampler(label_col="label", random_state=11)
        out = sampler.fit_resample(df.repartition(parts))
        assert "number copies of identical rows" not in sampler.summary_["timings"]
        got = out.select(rid, "label").toPandas()
        assert len(got) == 200 and (got.groupby("label").size() == 100).all()
        kept.append(set(got["rid"]))
        sampler.release()
    k1, k2 = row_keys(df, 11)
    keys = df.select(rid, "label", k1.alias("k1"), k2.alias("k2")).toPandas()
    want = set(keys.sort_values(["k1", "k2"]).groupby("label").head(100)["rid"])
    assert kept[0] == kept[1] == want


def test_rows_whose_maps_differ_only_in_a_null_value_are_not_copies(spark):
    """Pairs of rows whose maps list the same leaves, a null value in another place
    ({a: null, b: x} and {a: b, x: null}): Spark's hash skips nulls, so they used to share keys
    and be numbered as copies in partition order. They are distinct rows: no copies, and the
    same rows kept whatever the partitioning or the input order."""
    df = spark.range(400).selectExpr(
        "cast(id >= 300 as int) as label", "cast(id div 2 as double) as f",
        "if(id % 2 = 0, map('a', cast(null as string), 'b', concat('x', id div 2)), "
        "map('a', 'b', concat('x', id div 2), cast(null as string))) as m")
    kept = []
    for layout in (df.repartition(1), df.repartition(4), df.orderBy(F.desc("f")).coalesce(1)):
        sampler = RandomUnderSampler(label_col="label", random_state=11)
        out = sampler.fit_resample(layout)
        assert "number copies of identical rows" not in sampler.summary_["timings"]
        got = out.select("label", "f", F.col("m")["a"].isNull().alias("a_null")).toPandas()
        assert (got.groupby("label").size() == 100).all()
        kept.append(sorted(map(tuple, got.values.tolist())))
        sampler.release()
    assert kept[0] == kept[1] == kept[2]


def test_structs_with_repeated_or_case_twin_field_names_are_read_by_position(spark):
    """Fields named alike (or alike but for case, which Spark resolves without case) are read by
    position: such structs hash, and rows differing in where a null or a nested element sits
    get different keys."""
    from imbal_spark.sampling.random import row_keys

    for a, b in [("named_struct('a', map('x', 1), 'a', 2)", "named_struct('a', map('x', 1), 'a', 3)"),
                 ("named_struct('a', 1, 'A', 2)", "named_struct('a', 2, 'A', 1)"),
                 ("named_struct('a', 1, 'a', cast(null as int))", "named_struct('a', cast(null as int), 'a', 1)"),
                 ("named_struct('a', array(array(1, 2), array()), 'a', 1)",
                  "named_struct('a', array(array(1), array(2)), 'a', 1)")]:
        df = spark.sql(f"select {a} as s union all select {b}")
        k1, _ = row_keys(df, 1)
        assert df.select(k1).distinct().count() == 2, (a, b)


def test_vector_columns_are_hashed_one_by_one(spark):
    """Each ML vector is one value of the key, so where one vector ends and the next begins
    counts (Spark's hash chains a vector's indices and values without lengths)."""
    from pyspark.ml.linalg import SparseVector, Vectors, VectorUDT
    from pyspark.sql import types as T

    from imbal_spark.sampling.random import row_keys

    a = (SparseVector(2, [], []), Vectors.dense([5.0]), SparseVector(3, [1], [7.0]))
    b = (SparseVector(2, [1], [5.0]), SparseVector(3, [], []), Vectors.dense([7.0]))
    schema = T.StructType([T.StructField(c, VectorUDT(), False) for c in ("v1", "v2", "v3")])
    df = spark.createDataFrame([a, b], schema)
    k1, _ = row_keys(df, 3)
    assert df.select(k1).distinct().count() == 2
    arr = spark.createDataFrame([(list(a),), (list(b),)], T.StructType([T.StructField("vs", T.ArrayType(VectorUDT(), False))]))
    k1, _ = row_keys(arr, 3)
    assert arr.select(k1).distinct().count() == 2


def test_rows_with_nulls_in_other_places_differ_in_both_keys(spark):
    """Two rows of 40 columns, 20 nulls each in other places, whose null words a 32-bit mix
    (murmur3 of the int seed) maps alike: the 64-bit mix keeps their keys apart."""
    from pyspark.sql import types as T

    from imbal_spark.sampling.random import row_keys

    n, words = 40, (357406242567, 587219859896)
    schema = T.StructType([T.StructField(f"c{i}", T.IntegerType(), True) for i in range(n)])
    df = spark.createDataFrame([tuple(None if w >> i & 1 else 1 for i in range(n)) for w in words], schema)
    one = spark.range(1).select(*[F.hash(F.lit(3), F.lit(w)).alias(f"h{i}") for i, w in enumerate(words)]).first()
    assert one[0] == one[1]  # the pair a 32-bit mix could not tell apart
    k1, k2 = row_keys(df, 3)
    keys = df.select(k1, k2).collect()
    assert keys[0][0] != keys[1][0] and keys[0][1] != keys[1][1]
