"""Reading inputs and writing outputs without ever leaving partial data at the destination.

Every job writes its whole output directory into a hidden temporary sibling first and swaps
it into place only when everything succeeded (``staged_output``). Paths go through Hadoop's
FileSystem API, so the same code works on local disk, HDFS and object stores.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import uuid

from .errors import ConfigError, ImbalSparkError, InputError, OutputExistsError

log = logging.getLogger(__name__)

FORMATS = ("parquet", "csv")


def _fs(spark, path: str):
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    fs = p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, p


def exists(spark, path: str) -> bool:
    fs, p = _fs(spark, path)
    if any(c in path for c in "*?["):
        st = fs.globStatus(p)
        return st is not None and len(st) > 0
    return fs.exists(p)


def delete(spark, path: str) -> None:
    fs, p = _fs(spark, path)
    if fs.exists(p):
        fs.delete(p, True)


def infer_format(path: str, fmt: str | None = None) -> str:
    if fmt:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise InputError(f"input format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
        return fmt
    stripped = path.rstrip("/").lower()
    if stripped.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    return "parquet"


def read_table(spark, path: str, fmt: str | None = None):
    """Read Parquet or CSV (by ``fmt`` or the extension). Errors name the path and the cause."""
    if not path:
        raise InputError("no input given: pass --input PATH (a Parquet directory or a CSV file)")
    fmt = infer_format(path, fmt)
    if not exists(spark, path):
        raise InputError(f"input path {path!r} does not exist; check --input")
    from pyspark.errors import AnalysisException

    try:
        if fmt == "csv":
            sep = "\t" if path.lower().endswith(".tsv") else ","
            df = spark.read.csv(path, header=True, inferSchema=True, sep=sep)
        else:
            df = spark.read.parquet(path)
    except AnalysisException as e:
        msg = str(e).splitlines()[0]
        if "UNABLE_TO_INFER_SCHEMA" in msg or "Unable to infer schema" in msg:
            raise InputError(f"input {path!r} is empty or not {fmt}: no data files found") from None
        raise InputError(f"cannot read input {path!r} as {fmt}: {msg}") from None
    except Exception as e:  # Py4JJavaError for corrupt files
        msg = _java_msg(e)
        raise InputError(f"cannot read input {path!r} as {fmt}: {msg}; is it really {fmt}?") from None
    if not df.columns:
        raise InputError(f"input {path!r} has no columns; is it really {fmt}?")
    return df


def _java_msg(e) -> str:
    s = str(e)
    for line in s.splitlines():
        line = line.strip()
        if "Exception:" in line or "Error:" in line:
            return line[:300]
    return s.splitlines()[0][:300] if s else type(e).__name__


def check_not_empty(df, path: str) -> int:
    """Count rows (one Spark job); an empty input is an error. Also surfaces corrupt files."""
    try:
        n = df.count()
    except Exception as e:
        raise InputError(f"cannot read input {path!r}: {_java_msg(e)}") from None
    if n == 0:
        raise InputError(f"input {path!r} has no rows; nothing to do")
    return n


def require_columns(df, columns, role="column"):
    from .errors import MissingColumnError

    for c in columns:
        if c not in df.columns:
            raise MissingColumnError(c, df.columns, role)


def _default_fs(spark_conf: dict | None = None) -> str:
    """``fs.defaultFS`` as the job's ``spark:`` settings or this machine's configuration set it
    (``spark.hadoop.fs.defaultFS`` there or in spark-defaults.conf, else core-site.xml under
    SPARK_CONF_DIR, HADOOP_CONF_DIR or YARN_CONF_DIR), '' when unset: what a path without a
    scheme resolves against once Spark runs."""
    import os
    import re
    import xml.etree.ElementTree as ET

    key = "spark.hadoop.fs.defaultFS"
    if spark_conf and spark_conf.get(key):
        return str(spark_conf[key])
    conf_dir = os.environ.get("SPARK_CONF_DIR") or (
        os.path.join(os.environ["SPARK_HOME"], "conf") if os.environ.get("SPARK_HOME") else None)
    if conf_dir and os.path.isfile(os.path.join(conf_dir, "spark-defaults.conf")):
        with open(os.path.join(conf_dir, "spark-defaults.conf")) as f:
            for line in f:  # Java properties: "key value", "key=value" or "key: value"
                m = re.match(r"\s*([^\s=:#!]+)\s*[\s=:]\s*(.*?)\s*$", line)
                if m and m.group(1) == key:
                    return m.group(2)
    for var in ("SPARK_CONF_DIR", "HADOOP_CONF_DIR", "YARN_CONF_DIR"):
        site = os.path.join(os.environ.get(var) or "", "core-site.xml")
        if os.environ.get(var) and os.path.isfile(site):
            try:
                for prop in ET.parse(site).getroot().iter("property"):
                    if (prop.findtext("name") or "").strip() in ("fs.defaultFS", "fs.default.name"):
                        return (prop.findtext("value") or "").strip()
            except ET.ParseError:
                pass
    return ""


def _local_path(path: str, spark_conf: dict | None = None):
    """The local file path of ``path`` if it is surely on local disk (``file:``, or no scheme while
    the default filesystem is local), else None. Under spark-submit the JVM already holds settings
    Python cannot see (``--conf``, ``--properties-file``): a path without a scheme is then left to
    Spark."""
    import os
    from urllib.parse import urlparse

    u = urlparse(path)
    if any(c in path for c in "*?["):
        return None
    if u.scheme == "file":
        return u.path
    if (u.scheme == "" and "PYSPARK_GATEWAY_PORT" not in os.environ
            and urlparse(_default_fs(spark_conf)).scheme in ("", "file")):
        return path
    return None


def precheck(inputs=(), output: str | None = None, mode: str = "error", spark_conf: dict | None = None) -> None:
    """Fail fast, before a JVM starts, on what can be seen on local disk: a missing input, an
    existing output without overwrite, an unknown mode. Remote paths (and paths without a scheme
    on a cluster whose default filesystem is HDFS, say) are checked later, through Spark."""
    import os

    if mode not in ("error", "overwrite"):
        raise ImbalSparkError(f"--mode {mode!r} is not supported; use 'error' (default) or 'overwrite'")
    for path in inputs:
        if path:
            local = _local_path(path, spark_conf)
            if local is not None and not os.path.exists(local):
                raise InputError(f"input path {path!r} does not exist; check --input")
    if output:
        for path in inputs:
            if path and _overlap(path, output):
                raise ConfigError(
                    f"output {output!r} is the input {path!r} or lies inside or around it: writing there "
                    f"would change (or, with overwrite, delete) the input; choose an output outside it")
        local = _local_path(output, spark_conf)
        if local is not None and mode != "overwrite" and os.path.exists(local):
            raise OutputExistsError(output)
        if local is not None:  # the staged output is made beside it, in its nearest existing folder
            up = os.path.dirname(os.path.abspath(local.rstrip("/") or "/"))
            while not os.path.exists(up):
                up = os.path.dirname(up)
            if not os.path.isdir(up):
                raise ConfigError(f"cannot write output {output!r}: {up!r} is a file, not a folder; "
                                  f"choose another --output")
            if not os.access(up, os.W_OK | os.X_OK):
                raise ConfigError(f"cannot write output {output!r}: no permission to write in {up!r}; "
                                  f"choose another --output")


def _overlap(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` are the same directory or one holds the other (local paths
    resolved, symbolic links included; others compared as URIs)."""
    import os

    def norm(p):
        local = _local_path(p)
        return os.path.realpath(local) if local is not None else p.rstrip("/")

    x, y = norm(a), norm(b)
    return x == y or x.startswith(y.rstrip("/") + "/") or y.startswith(x.rstrip("/") + "/")


def check_destination(spark, path: str, mode: str) -> None:
    """Fail early, before any work, when the destination exists and overwrite was not asked."""
    if mode not in ("error", "overwrite"):
        raise ImbalSparkError(f"--mode {mode!r} is not supported; use 'error' (default) or 'overwrite'")
    if not path:
        raise ImbalSparkError("no output given: pass --output DIR")
    if mode != "overwrite" and exists(spark, path):
        raise OutputExistsError(path)


@contextlib.contextmanager
def staged_output(spark, path: str, mode: str = "error"):
    """Yield a temporary sibling directory; on success swap it into ``path``.

    A failure (exception, interrupt) deletes the temporary directory and leaves ``path``
    exactly as it was. With ``mode='overwrite'`` the old destination is moved aside, the new
    one renamed in, and only then is the old one deleted; if the rename fails the old one is
    put back.
    """
    check_destination(spark, path, mode)
    fs, dest = _fs(spark, path)
    parent = dest.getParent()
    token = uuid.uuid4().hex[:12]
    jvm = spark.sparkContext._jvm
    tmp = jvm.org.apache.hadoop.fs.Path(parent, f".{dest.getName()}.tmp-{token}")
    old = jvm.org.apache.hadoop.fs.Path(parent, f".{dest.getName()}.old-{token}")
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    # tmp is not created here: the caller may write a Parquet data set straight into it.
    try:
        yield tmp.toString()
    except BaseException:
        try:
            fs.delete(tmp, True)
        except Exception:  # e.g. the JVM died with the signal that stopped us: keep the cause
            log.warning("could not remove the temporary output %s", tmp.toString())
        raise
    from .cli import sigterm_deferred

    with sigterm_deferred():  # the swap is a few renames: let a SIGTERM wait for them
        if not fs.exists(tmp):
            fs.mkdirs(tmp)
        # Re-check: another writer may have created the destination while we worked.
        if fs.exists(dest):
            if mode != "overwrite":
                fs.delete(tmp, True)
                raise OutputExistsError(path)
            if not fs.rename(dest, old):
                fs.delete(tmp, True)
                raise ImbalSparkError(f"could not move the old output {path!r} aside; nothing was changed")
        if not fs.rename(tmp, dest):
            if fs.exists(old):
                fs.rename(old, dest)
            fs.delete(tmp, True)
            raise ImbalSparkError(f"could not move the new output into {path!r}; the old output is kept")
        if fs.exists(old):
            fs.delete(old, True)
    log.info("wrote %s", path)


def write_parquet(df, path: str, partition_by=None) -> None:
    """Write inside a staged directory (the caller's ``staged_output`` makes it atomic)."""
    w = df.write.mode("error")
    if partition_by:
        missing = [c for c in partition_by if c not in df.columns]
        if missing:
            from .errors import MissingColumnError

            raise MissingColumnError(missing[0], df.columns, "partition column")
        w = w.partitionBy(*partition_by)
    w.parquet(path)


def write_bytes(spark, path: str, data: bytes) -> None:
    fs, p = _fs(spark, path)
    if fs.getUri().getScheme() == "file":
        # Local disk: plain Python, so no Hadoop .crc side files next to the report.
        import os

        local = p.toUri().getPath()
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as f:
            f.write(data)
        return
    out = fs.create(p, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def read_text(spark, path: str) -> str:
    fs, p = _fs(spark, path)
    stream = fs.open(p)
    try:
        jvm = spark.sparkContext._jvm
        return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def _clean(obj):
    """JSON-safe: NaN/inf become null (JSON has no NaN), numpy scalars become Python ones."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def to_json(obj) -> str:
    return json.dumps(_clean(obj), indent=2, sort_keys=False, default=str) + "\n"


def write_json(spark, path: str, obj) -> None:
    write_bytes(spark, path, to_json(obj).encode())


def write_text(spark, path: str, text: str) -> None:
    write_bytes(spark, path, text.encode())
