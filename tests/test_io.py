import json

import pytest

from imbal_spark import io
from imbal_spark.errors import InputError, OutputExistsError


def test_staged_output_swaps_in_only_on_success(spark, tmp_path):
    dest = tmp_path / "out"
    df = spark.range(10)
    with io.staged_output(spark, str(dest), "error") as stage:
        assert not dest.exists()              # nothing at the destination while working
        io.write_parquet(df, f"{stage}/data")
        io.write_json(spark, f"{stage}/summary.json", {"n": 10, "bad": float("nan")})
    assert spark.read.parquet(str(dest / "data")).count() == 10
    assert json.loads((dest / "summary.json").read_text()) == {"n": 10, "bad": None}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary siblings left


def test_failure_leaves_existing_destination_untouched(spark, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("precious")
    with pytest.raises(RuntimeError):
        with io.staged_output(spark, str(dest), "overwrite") as stage:
            io.write_parquet(spark.range(5), f"{stage}/data")
            raise RuntimeError("job failed half-way")
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_existing_destination_needs_overwrite(spark, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match="already exists; pass --mode overwrite"):
        with io.staged_output(spark, str(dest), "error"):
            pass
    assert (dest / "keep.txt").read_text() == "precious"
    with io.staged_output(spark, str(dest), "overwrite") as stage:
        io.write_json(spark, f"{stage}/new.json", [1])
    assert [p.name for p in dest.iterdir()] == ["new.json"]


def test_partitioned_parquet(spark, tmp_path):
    df = spark.createDataFrame([(1, "a"), (2, "b"), (3, "a")], "x long, day string")
    with io.staged_output(spark, str(tmp_path / "o")) as stage:
        io.write_parquet(df, stage, partition_by=["day"])
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if p.is_dir()) == ["day=a", "day=b"]
    assert spark.read.parquet(str(tmp_path / "o")).where("day = 'a'").count() == 2


def test_read_csv_and_parquet_by_extension(spark, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x,label\n1.5,a\n2.5,b\n")
    df = io.read_table(spark, str(csv))
    assert dict(df.dtypes) == {"x": "double", "label": "string"} and df.count() == 2
    spark.range(3).write.parquet(str(tmp_path / "p"))
    assert io.read_table(spark, str(tmp_path / "p")).count() == 3
    assert io.read_table(spark, str(csv), "csv").count() == 2


def test_read_errors_name_the_path(spark, tmp_path):
    with pytest.raises(InputError, match=r"input path '.*nope' does not exist"):
        io.read_table(spark, str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="is empty or not parquet"):
        io.read_table(spark, str(tmp_path / "empty"))
    junk = tmp_path / "junk.parquet"
    junk.write_text("this is not parquet")
    with pytest.raises(InputError, match=r"cannot read input '.*junk.parquet'"):
        io.check_not_empty(io.read_table(spark, str(junk)), str(junk))
    with pytest.raises(InputError, match="format 'orc' is not supported"):
        io.read_table(spark, str(junk), "orc")


def test_an_output_that_is_or_holds_or_lies_in_an_input_is_refused(tmp_path):
    """Writing into the input would change it (a nested directory breaks a partitioned input's
    layout) and overwriting it would delete it: refused before anything starts."""
    from imbal_spark.errors import ConfigError

    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "link").symlink_to(data)
    for out in (data, f"{data}/", data / "res", tmp_path, tmp_path / "link" / "res", f"file://{data}/x"):
        with pytest.raises(ConfigError, match="is the input .* or lies inside or around it"):
            io.precheck([str(data)], str(out), "overwrite")
    io.precheck([str(data)], str(tmp_path / "data2"), "overwrite")  # a sibling sharing a prefix is fine
    io.precheck([str(data)], "hdfs:///elsewhere/out", "error")
    with pytest.raises(ConfigError):
        io.precheck(["s3a://b/in"], "s3a://b/in/out", "error")


def test_sigterm_mid_write_leaves_the_destination_and_no_temporary_directory(tmp_path):
    """Airflow stops a task on timeout with SIGTERM: a job then exits 143 with one error line,
    the old destination intact and its staged temporary directory removed (SIGTERM used to kill
    the process with the temporary directory left behind)."""
    import os
    import subprocess
    import sys

    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("precious")
    script = tmp_path / "job.py"
    script.write_text(f"""
import os, signal, time
from imbal_spark import io
from imbal_spark.cli import run
from imbal_spark.session import get_spark

def main(argv):
    spark = get_spark("sigterm test", {{"spark.master": "local[1]", "spark.ui.enabled": "false"}})
    with io.staged_output(spark, {str(dest)!r}, "overwrite") as stage:
        io.write_parquet(spark.range(5), stage + "/data")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
    return 0

run(main)
""")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYSPARK_PYTHON=sys.executable))
    assert r.returncode == 143, r.stderr[-2000:]
    assert [line for line in r.stderr.splitlines() if line.startswith("error: ")] == [
        "error: terminated (SIGTERM); no partial output was left at the destination"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.py", "out"]
    assert [p.name for p in dest.iterdir()] == ["keep.txt"] and (dest / "keep.txt").read_text() == "precious"


def test_an_output_under_a_file_is_refused_before_spark(tmp_path):
    from imbal_spark.errors import ConfigError

    (tmp_path / "f.csv").write_text("a\n1\n")
    with pytest.raises(ConfigError, match=r"cannot write output .*f.csv/sub/out.*is a file, not a folder"):
        io.precheck([], str(tmp_path / "f.csv" / "sub" / "out"), "error")
    io.precheck([], str(tmp_path / "new" / "deeper" / "out"), "error")  # folders yet to be made are fine


def test_paths_without_a_scheme_are_local_only_when_the_default_filesystem_is(tmp_path, monkeypatch):
    """On a cluster whose core-site.xml makes HDFS the default filesystem, '/data/x' is an HDFS
    path: the local pre-check must not call it missing (Spark checks it later)."""
    for var in ("HADOOP_CONF_DIR", "YARN_CONF_DIR", "SPARK_HOME", "PYSPARK_GATEWAY_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path / "spark-conf"))
    missing = str(tmp_path / "no-such-input")
    with pytest.raises(InputError, match="does not exist"):
        io.precheck([missing], None)
    conf = tmp_path / "hadoop"
    conf.mkdir()
    (conf / "core-site.xml").write_text(
        "<configuration><property><name>fs.defaultFS</name><value>hdfs://nn:8020</value></property>"
        "</configuration>")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(conf))
    assert io._local_path(missing) is None and io._local_path(f"file://{missing}") == missing
    io.precheck([missing], None)  # left to Spark
    with pytest.raises(InputError, match="does not exist"):
        io.precheck([f"file://{missing}"], None)
    (conf / "core-site.xml").unlink()
    (tmp_path / "spark-conf").mkdir()
    for line in ("spark.hadoop.fs.defaultFS  s3a://bucket", "spark.hadoop.fs.defaultFS=s3a://bucket",
                 "spark.hadoop.fs.defaultFS: s3a://bucket"):  # Java properties' three separators
        (tmp_path / "spark-conf" / "spark-defaults.conf").write_text(f"# c\n{line}\n")
        io.precheck([missing], None)
    (tmp_path / "spark-conf" / "spark-defaults.conf").unlink()
    with pytest.raises(InputError, match="does not exist"):
        io.precheck([missing], None)
    io.precheck([missing], None, spark_conf={"spark.hadoop.fs.defaultFS": "hdfs://nn"})  # the job's spark: key
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "1")  # under spark-submit the JVM's settings are unseen
    io.precheck([missing], None)


def test_a_sigterm_during_the_swap_waits_for_it_to_finish():
    """The swap of a staged output is a few renames: a SIGTERM arriving between them is held
    until they are done, then stops the job (never the old output moved aside and the new one
    not yet in)."""
    import os
    import signal

    from imbal_spark import cli

    before = signal.signal(signal.SIGTERM, cli._on_sigterm)
    try:
        done = []
        with pytest.raises(cli._Terminated):
            with cli.sigterm_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("renamed")
        assert done == ["renamed"]
        with pytest.raises(cli._Terminated):  # outside the block it stops at once
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("never")
        assert done == ["renamed"]
        try:  # a clean-up error raised while handling SIGTERM still counts as SIGTERM
            try:
                raise cli._Terminated()
            except cli._Terminated:
                raise RuntimeError("JVM gone")
        except RuntimeError as e:
            assert cli._terminated(e)
        assert not cli._terminated(RuntimeError("other"))
    finally:
        signal.signal(signal.SIGTERM, before)
