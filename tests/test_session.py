import os
import stat

import pytest

from imbal_spark import session
from imbal_spark.errors import ImbalSparkError


def _fake_java(tmp_path, version_line):
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return str(home)


def test_java_version_parsing(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", _fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15'))
    assert session.java_version() == 17
    monkeypatch.setenv("JAVA_HOME", _fake_java(tmp_path / "b", 'java version "1.8.0_392"'))
    assert session.java_version() == 8


def test_old_java_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", _fake_java(tmp_path, 'openjdk version "11.0.2" 2019-01-15'))
    with pytest.raises(ImbalSparkError, match="Java 11 found, but Spark 4 needs Java 17 or newer"):
        session.check_java()


def test_no_java_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImbalSparkError, match="Java was not found"):
        session.check_java()


def test_this_machine_has_java_17_or_newer():
    assert session.check_java() >= 17


def test_get_spark_reuses_the_running_session_and_keeps_its_master(spark):
    s = session.get_spark("x", {"spark.sql.shuffle.partitions": "2"})
    assert s is spark and s.sparkContext.master == "local[2]"
    assert s.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"


def test_a_job_session_reads_a_cached_aggregation_of_few_rows_in_few_partitions(spark):
    """Adaptive execution may coalesce a cached plan's shuffle partitions (get_spark's default):
    without it, a persisted groupBy keeps every shuffle partition for each later pass."""
    from pyspark.sql import functions as F

    key = "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning"
    old = {k: spark.conf.get(k, None) for k in (key, "spark.sql.shuffle.partitions")}
    try:
        spark.conf.set(key, "false")  # as a spark-submit --conf or the spark: section would
        assert session.get_spark("x").conf.get(key) == "false"  # a setting is never overridden
        spark.conf.unset(key)
        s = session.get_spark("x")
        assert s is spark and s.conf.get(key) == "true"  # unset: the jobs' default
        s.conf.set("spark.sql.shuffle.partitions", "50")
        parts = {}
        for value in ("true", "false"):
            s.conf.set(key, value)
            g = s.range(100).groupBy((F.col("id") % 7).alias("k")).count().persist()
            try:
                assert sorted(r["count"] for r in g.collect()) == [14] * 5 + [15] * 2
                parts[value] = g.rdd.getNumPartitions()
            finally:
                g.unpersist()
        assert parts["true"] <= 2 and parts["false"] == 50
    finally:
        for k, v in old.items():
            spark.conf.unset(k) if v is None else spark.conf.set(k, v)
