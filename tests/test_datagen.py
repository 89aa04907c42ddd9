import numpy as np
import pytest

from imbal_spark import datagen
from imbal_spark.errors import InputError


def test_exact_class_counts_and_shape(spark):
    df = datagen.generate(spark, 120_001, n_features=6, informative=3, weights=[0.9, 0.07, 0.03],
                          classes=3, seed=7, partitions=3)
    assert df.columns == ["id", "f0", "f1", "f2", "f3", "f4", "f5", "label"]
    counts = {r["label"]: r["count"] for r in df.groupBy("label").count().collect()}
    bounds = datagen.class_boundaries(120_001, [0.9, 0.07, 0.03])
    assert counts == {0: bounds[0], 1: bounds[1] - bounds[0], 2: 120_001 - bounds[1]}
    assert counts == {0: 108_001, 1: 8_400, 2: 3_600}
    assert df.select("id").distinct().count() == 120_001


def test_same_seed_same_data_whatever_the_partitions(spark):
    a = datagen.generate(spark, 60_000, 4, 2, [0.8, 0.2], 2, seed=3, partitions=1)
    b = datagen.generate(spark, 60_000, 4, 2, [0.8, 0.2], 2, seed=3, partitions=2)
    c = datagen.generate(spark, 60_000, 4, 2, [0.8, 0.2], 2, seed=4, partitions=2)
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0
    assert a.exceptAll(c).count() == 60_000


def test_block_is_a_pure_function():
    kw = dict(rows=1000, seed=1, n_features=5, informative=2, bounds=[900, 1000], mult=619,
              offset=3, verts=np.array([[1.0, -1.0], [-1.0, 1.0]]),
              mixing=np.stack([np.eye(2)] * 2), redundant_weights=np.ones((2, 2)))
    a = datagen.generate_block(0, 0, 1000, **kw)
    b = datagen.generate_block(0, 0, 1000, **kw)
    assert a.equals(b)
    assert (a["label"] == 1).sum() == 100
    # informative features separate the classes: class means differ by about 2 per axis
    m = a.groupby("label")[["f0", "f1"]].mean().to_numpy()
    assert np.all(np.abs(m[0] - m[1]) > 1.0)


@pytest.mark.parametrize("kw,msg", [
    (dict(rows=0), r"--rows must be a positive number of rows, got 0"),
    (dict(weights=[0.9, 0.2]), r"--weights 0.9,0.2 sum to 1.1, not 1"),
    (dict(weights=[0.5, 0.3, 0.2]), r"gives 3 proportions .* but --classes is 2"),
    (dict(informative=30), r"--informative must be between 1 and --n-features \(20\)"),
])
def test_bad_parameters(kw, msg):
    args = dict(rows=10, n_features=20, informative=2, weights=[0.9, 0.1], classes=2)
    args.update(kw)
    with pytest.raises(InputError, match=msg):
        datagen.check_params(**args)


def test_reference_frames_match_scikit_learn():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    train, test = datagen.reference_frames()
    X, y = make_classification(**datagen.REFERENCE)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=42)
    assert np.array_equal(train[[f"f{j}" for j in range(20)]].to_numpy(), Xtr)
    assert np.array_equal(test["label"].to_numpy(), yte)
    assert np.bincount(ytr).tolist() == [630, 70] and np.bincount(yte).tolist() == [270, 30]
    assert np.array_equal(X[train["id"].to_numpy()], Xtr)


@pytest.mark.parametrize("classes,informative", [(2, 2), (3, 2), (4, 2), (2, 1), (3, 5)])
def test_class_centres_are_distinct_vertices(classes, informative):
    # seed 3 once put both classes of (2, 2) on one vertex: no signal at all
    for seed in range(40):
        verts, _ = datagen._centroids(seed, classes, informative)
        assert len(np.unique(verts, axis=0)) == classes, seed
        assert set(np.unique(verts)) <= {-1.0, 1.0}
