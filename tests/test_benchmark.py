"""The benchmark harness (issue 6): its measuring tools against known truths, and one tiny
end-to-end run of `jobs/benchmark.py` whose results.json must hold every figure with sane values.
Nothing here is timed: the benchmark itself is `make bench`."""

import json
import os
import resource
import sys
import textwrap
import time

import numpy as np
import pytest

from imbal_spark import bench, datagen
from imbal_spark.errors import ConfigError

PY = sys.executable


# -- the measuring tools -----------------------------------------------------------------------------

def _alloc(mb, then="", seconds=1.0):
    return textwrap.dedent(f"""
        import time
        buf = bytearray({mb} * 1024 * 1024)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        {then}
        time.sleep({seconds})
    """)


def test_sampler_sees_each_process_of_the_tree(tmp_path):
    # a parent holding 150 MB starts a child holding 300 MB: both are Python, the peak of one
    # process is the child's, and the tree holds at least both at once
    child = _alloc(300, seconds=1.5)
    parent = _alloc(150, then=f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])",
                    seconds=0.1)
    r = bench.run_measured([PY, "-c", parent], log_path=str(tmp_path / "a.log"))
    assert r["status"] == "ok" and r["returncode"] == 0
    py = r["memory"]["python_driver"]
    assert py["processes"] == 2 and py["max_concurrent"] == 2
    assert 300 <= py["peak_rss_mb"] < 300 + 150  # the child's 300 MB + an interpreter
    assert r["peak_tree_mb"] >= 300 + 150
    # the kernel's own figure (wait4's ru_maxrss) is never below the polled peak; it also counts
    # the pages a child held between fork and exec, a copy of this (pytest) process, so it equals
    # the polled peak only while this process is the smaller (other tests may have grown it)
    assert r["peak_rss_wait4_mb"] >= py["peak_rss_mb"] - 5
    if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 < py["peak_rss_mb"] - 20:
        assert r["peak_rss_wait4_mb"] == pytest.approx(py["peak_rss_mb"], abs=5)
    assert 300 <= py["peak_anon_mb"] <= py["peak_rss_mb"]  # the child's bytearray is anonymous memory
    assert 1.5 <= r["wall_s"] < 30


def test_anonymous_peak_leaves_out_pages_mapped_from_files(tmp_path):
    # a process that maps a 200 MB file and reads every page: its RSS holds the file's pages (as it
    # holds the pages of shared libraries), its anonymous memory does not
    big = tmp_path / "blob"
    with open(big, "wb") as f:
        f.write(b"\1" * (200 << 20))
    reader = textwrap.dedent(f"""
        import mmap, time
        with open({str(big)!r}, "rb") as f:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            total = sum(m[i] for i in range(0, len(m), 4096))
            time.sleep(1.0)
    """)
    r = bench.run_measured([PY, "-c", reader], log_path=str(tmp_path / "m.log"))
    assert r["status"] == "ok"
    py = r["memory"]["python_driver"]
    assert py["peak_rss_mb"] >= 200
    assert py["peak_anon_mb"] < 100  # an interpreter's own memory, without the file


def test_cpu_seconds_of_every_process(tmp_path):
    # CPU time, not wall time: the parent burns 0.5 s and its child 1.5 s of CPU
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < {}: pass\n"
    parent = spin.format(0.5) + f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spin.format(1.5)!r}])"
    r = bench.run_measured([PY, "-c", parent], log_path=str(tmp_path / "c.log"))
    assert r["status"] == "ok"
    assert 2.0 <= r["memory"]["python_driver"]["cpu_s"] < 4.0
    assert 2.0 <= r["cpu_s"] < 4.0


def test_caps_stop_the_whole_tree(tmp_path):
    marker = tmp_path / "child.pid"
    sleeper = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {sleeper!r}]); time.sleep(60)"
    r = bench.run_measured([PY, "-c", code], log_path=str(tmp_path / "t.log"), timeout=3)
    assert r["status"] == "time cap" and r["wall_s"] < 30
    time.sleep(0.5)
    assert _gone(int(marker.read_text()))  # the grandchild went with it
    r = bench.run_measured([PY, "-c", _alloc(400, seconds=20)], log_path=str(tmp_path / "m.log"),
                           memory_cap=200 * 1024**2)
    assert r["status"] == "memory cap" and r["wall_s"] < 20


def test_a_process_that_left_the_group_is_stopped_too(tmp_path):
    # like pyspark.daemon, which puts itself in a process group of its own
    marker = tmp_path / "child.pid"
    sleeper = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    code = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {sleeper!r}], "
            f"start_new_session=True); time.sleep(1.5)")
    r = bench.run_measured([PY, "-c", code], log_path=str(tmp_path / "s.log"))
    assert r["status"] == "ok" and r["stopped_leftover_processes"] == 1
    time.sleep(0.5)
    assert _gone(int(marker.read_text()))


def _gone(pid) -> bool:
    """Exited: no such process, or a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_failed_run_reports_its_error(tmp_path):
    r = bench.run_measured([PY, "-c", "import sys; print('error: column x is missing', file=sys.stderr); sys.exit(2)"],
                           log_path=str(tmp_path / "f.log"))
    assert r["status"] == "failed" and r["returncode"] == 2
    assert r["error"] == "column x is missing"


def test_sizes():
    assert bench.parse_sizes("300k,1M,3M,10M") == [300_000, 1_000_000, 3_000_000, 10_000_000]
    assert bench.parse_sizes(["1.5M", 20000, "20k"]) == [20_000, 1_500_000]
    assert bench.parse_sizes(20000) == [20_000]
    for bad in ("abc", "-5", "0", "1T"):
        with pytest.raises(ConfigError, match="sizes"):
            bench.parse_sizes(bad)
    assert [bench.human(n) for n in (300_000, 1_000_000, 2_500_000, 12_345)] == ["300k", "1M", "2.5M", "12,345"]


def test_targets_from_figures():
    def run(wall, jvm=1000.0):
        return {"status": "ok", "wall_s": wall, "memory": {"jvm": {"peak_rss_mb": jvm}}}

    res = {"sizes": [
        {"rows": 1_000_000, "imbal_spark": {**run(20.0), "neighbour_recall": 0.95}, "floor": run(12.0, jvm=900.0),
         "ratios": {"imbal_spark_over_floor": 1.6},
         "quality": {"delta_vs_imblearn": {"roc_auc": -0.004, "minority_f1": 0.02}}},
        {"rows": 3_000_000, "imbal_spark": {**run(50.0), "neighbour_recall": 0.85},
         "ratios": {"imbal_spark_over_floor": 2.4, "speedup_vs_imblearn": 4.5}},
        {"rows": 10_000_000, "imbal_spark": run(260.0, jvm=1400.0), "floor": run(90.0, jvm=1300.0),
         "ratios": {"imbal_spark_over_floor": None}},
    ], "scaling": {"rows": 3_000_000, "faster": "local[2]", "slower": "local[1]", "speedup": 1.5}}
    t = {x["name"]: x for x in bench.evaluate_targets(res)}
    assert t["imbal-spark >= 4x faster than imbalanced-learn at 3M rows"]["met"] is True
    assert t["imbal-spark / floor at 1M rows"]["met"] is True
    assert t["imbal-spark / floor at 3M rows"]["met"] is False
    assert t["imbal-spark / floor at 10M rows"]["met"] is None  # not measured is not a pass
    assert t["ROC AUC gap to imbalanced-learn at 1M"]["met"] is True
    assert t["minority F1 gap to imbalanced-learn at 1M"]["met"] is False
    assert t["neighbour recall@k at 3M"]["met"] is False
    assert t["10M rows complete"]["met"] is True
    assert t["time 10M / time 1M"]["figure"] == 13.0 and t["time 10M / time 1M"]["met"] is False
    assert t["peak RSS of one driver JVM process, 10M / 1M"]["figure"] == 1.4
    assert t["peak RSS of one driver JVM process, 10M / 1M"]["met"] is False
    assert t["peak RSS of one driver JVM process, 10M / 1M"]["note"] == \
        "1000 MB -> 1400 MB; the floor's: 900 MB -> 1300 MB"
    assert t["local[2] vs local[1] at 3M rows"]["met"] is False


def test_scaling_reuses_the_run_at_the_same_core_count(tmp_path, monkeypatch):
    # which runs the cores comparison makes: the measured SMOTE runs themselves are the smoke
    # run's business; here each "run" takes 60 s / cores
    cfg = {"sizes": "1M", "master": "local[2]", "scaling_rows": 1_000_000, "scaling_masters": ["local[1]", "local[2]"],
           "work_dir": str(tmp_path), "label_col": "label", "seed": 1, "k_neighbors": 5, "spark": {},
           "test_rows": 10, "n_features": 20, "informative": 2, "weights": [0.9, 0.1]}
    b = bench.Benchmark(cfg, str(tmp_path))
    made = []

    def fake_smote(rows, name, master):
        made.append(master)
        return {"status": "ok", "wall_s": 60.0 / bench.master_cores(master), "master": master}

    monkeypatch.setattr(b, "smote", fake_smote)
    b.results["sizes"] = [{"rows": 1_000_000, "imbal_spark": fake_smote(1_000_000, "main", "local[2]")}]
    b.run_scaling()
    sc = b.results["scaling"]
    assert made == ["local[2]", "local[1]"]  # local[2] was not run twice
    assert sc["runs"]["local[2]"]["reused"] and sc["faster"] == "local[2]" and sc["slower"] == "local[1]"
    assert sc["speedup"] == 2.0
    with pytest.raises(ConfigError, match="master 'yarn'"):
        bench.Benchmark({**cfg, "master": "yarn"}, str(tmp_path))


# -- the Spark pieces ----------------------------------------------------------------------------------

def test_floor_writes_smote_row_count_without_resampling(spark):
    rng = np.random.default_rng(0)
    rows = [(i, float(x), float(y), 1 if i < 3 else 0) for i, (x, y) in enumerate(rng.normal(size=(30, 2)))]
    df = spark.createDataFrame(rows, "id long, a double, b double, label long")
    out, counts = bench.floor_frame(df, "label", ["id"], seed=1)
    assert counts == {0: 27, 1: 3}
    pdf = out.toPandas()
    assert len(pdf) == 54 and list(pdf.columns) == ["id", "a", "b", "label", "is_synthetic"]
    new = pdf[pdf.is_synthetic]
    assert len(new) == 24 and (new.label == 1).all() and new.id.isna().all()
    src = pdf[(~pdf.is_synthetic) & (pdf.label == 1)]
    for _, r in new.iterrows():  # each new row is a minority row nudged by at most 1e-9 (relative)
        rel = np.abs(src[["a", "b"]].to_numpy() / r[["a", "b"]].to_numpy(dtype=float) - 1)
        assert (rel.max(axis=1) <= 1e-9).any()
    assert new[["a", "b"]].drop_duplicates().shape[0] == 24  # distinct values, like SMOTE's new rows


def test_holdout_is_the_training_distribution_with_fresh_rows(spark):
    train = datagen.generate(spark, 4000, 20, 2, [0.9, 0.1], 2, 42).toPandas()
    test = bench.holdout_frame(spark, 4000, 20, 2, [0.9, 0.1], 2, 42).toPandas()
    assert test.label.value_counts().to_dict() == {0: 3600, 1: 400}  # exact, like the generator
    assert test.id.min() >= bench.HOLDOUT_FIRST_BLOCK * datagen.BLOCK_ROWS and test.id.is_unique
    feats = [f"f{j}" for j in range(20)]
    assert len(train.merge(test, on=feats)) == 0
    m_tr, m_te = train.groupby("label")[feats].mean(), test.groupby("label")[feats].mean()
    assert np.abs(m_tr.to_numpy() - m_te.to_numpy()).max() < 0.25  # same class centres
    assert np.abs(m_tr.loc[1, ["f0", "f1"]].to_numpy() - m_tr.loc[0, ["f0", "f1"]].to_numpy()).max() > 1


def test_quality_is_scikit_learns_logistic_regression(spark, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    train = datagen.generate(spark, 3000, 20, 2, [0.8, 0.2], 2, 7)
    train.write.parquet(str(tmp_path / "train"))
    test = bench.holdout_frame(spark, 2000, 20, 2, [0.8, 0.2], 2, 7).cache()
    feats = [f"f{j}" for j in range(20)]
    q = bench.quality(spark, str(tmp_path / "train"), test, "label", feats, 1, max_train_rows=0)
    tr, te = train.toPandas(), test.toPandas()
    sk = LogisticRegression(C=1.0, max_iter=1000, tol=1e-8).fit(tr[feats], tr.label)
    p = sk.predict_proba(te[feats])[:, 1]
    assert q["train_rows"] == 3000 and q["train_fraction"] == 1.0
    assert q["roc_auc"] == pytest.approx(roc_auc_score(te.label, p), abs=1e-4)
    assert q["pr_auc"] == pytest.approx(average_precision_score(te.label, p), abs=1e-3)
    assert q["minority_f1"] == pytest.approx(f1_score(te.label, p >= 0.5), abs=2e-3)
    q2 = bench.quality(spark, str(tmp_path / "train"), test, "label", feats, 1, max_train_rows=1500, seed=3)
    assert 1200 < q2["train_rows"] < 1800 and q2["train_fraction"] == 0.5


# -- the whole benchmark, tiny ----------------------------------------------------------------------------

def test_benchmark_smoke_run(job, tmp_path):
    out, work = tmp_path / "bench-out", tmp_path / "work"
    r = job("benchmark.py", "--sizes", "20k", "--test-rows", "10000", "--work-dir", work, "--output", out,
            "--scaling-rows", "0", "--master", "local[2]", "--max-group-rows", "1000",
            "--quality-train-rows", "30000", "--spark", '{"spark.driver.memory": "1g"}', timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert res["machine"]["cores"] == os.cpu_count() and res["machine"]["memory_gib"] > 0
    (s,) = res["sizes"]
    assert s["rows"] == 20_000 and s["rows_out"] == 36_000  # 18,000 + 2,000 balanced to 1:1
    for key in ("imbal_spark", "floor", "imblearn"):
        run = s[key]
        assert run["status"] == "ok", (key, run.get("error"))
        assert run["rows_written"] == 36_000 and run["bytes_written"] > 36_000 * 8
        assert run["wall_s"] > 0 and run["cpu_s"] > 0
        assert run["rows_per_s"] == pytest.approx(36_000 / run["wall_s"], rel=1e-3)
        assert 10 < run["peak_process_rss_mb"] < 8192
    mem = s["imbal_spark"]["memory"]
    assert mem["jvm"]["peak_rss_mb"] > 100 and mem["python_driver"]["peak_rss_mb"] > 20
    assert mem["python_workers"]["peak_rss_mb"] > 20 and mem["python_workers"]["processes"] >= 1
    assert "jvm" not in s["imblearn"]["memory"] and s["imblearn"]["memory"]["python_driver"]["processes"] == 1
    assert s["ratios"]["speedup_vs_imblearn"] == pytest.approx(
        s["imblearn"]["wall_s"] / s["imbal_spark"]["wall_s"], rel=1e-2)
    assert s["ratios"]["imbal_spark_over_floor"] == pytest.approx(
        s["imbal_spark"]["wall_s"] / s["floor"]["wall_s"], rel=1e-2)
    # 2,000 minority rows in groups of at most 1,000: the grouping ran and its recall was measured
    assert s["imbal_spark"]["summary"]["groups"]["1"]["groups"] >= 2
    assert 0.0 <= s["imbal_spark"]["neighbour_recall"] <= 1.0
    q = s["quality"]
    for key in ("imbal_spark", "imblearn"):
        assert q[key]["train_rows"] == 30_000 or 25_000 < q[key]["train_rows"] < 35_000
        assert 0.8 < q[key]["roc_auc"] <= 1.0 and 0 < q[key]["pr_auc"] <= 1.0
        assert 0 < q[key]["minority_f1"] <= 1.0 and 0 < q[key]["minority_recall"] <= 1.0
    assert abs(q["delta_vs_imblearn"]["roc_auc"]) < 0.02  # same method, same test rows
    assert "scaling" not in res  # --scaling-rows 0 (the cores comparison: test_scaling_reuses_...)
    assert res["targets"] and all(t["met"] in (True, False, None) for t in res["targets"])
    md = (out / "results.md").read_text()
    assert f"{os.cpu_count()} cores" in md and "| 20k |" in md and "imbalanced-learn" in md
    assert (out / "logs" / "20000-smote.log").exists()
    assert not list((work / "runs").glob("*/data"))  # outputs removed once measured


def test_benchmark_refuses_bad_settings(job, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    r = job("benchmark.py", "--output", out)
    assert r.returncode == 2 and f"output {str(out)!r} already exists" in r.stderr
    r = job("benchmark.py", "--sizes", "300k,lots", "--output", tmp_path / "new")
    assert r.returncode == 2 and "sizes: 'lots' is not a row count" in r.stderr
    r = job("benchmark.py", "--master", "yarn", "--output", tmp_path / "new")
    assert r.returncode == 2 and "master 'yarn'" in r.stderr
