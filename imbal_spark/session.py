"""The one place a SparkSession is built.

The master is never hard-coded: under spark-submit the submit flags decide (the SparkConf
already holds ``spark.master``); only a plain ``python jobs/x.py`` falls back to ``local[*]``,
with the Python workers pinned to the running interpreter so they see the same packages.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys

from .errors import EnvironmentError_

log = logging.getLogger(__name__)

MIN_JAVA = 17
#: A Spark conf dir holding only a log4j2.properties that keeps Spark's logging at WARN.
SPARK_CONF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spark_conf")


def java_version() -> int | None:
    """Major version of the ``java`` Spark will use (JAVA_HOME first, then PATH), or None."""
    java = None
    if os.environ.get("JAVA_HOME"):
        cand = os.path.join(os.environ["JAVA_HOME"], "bin", "java")
        if os.path.exists(cand):
            java = cand
    java = java or shutil.which("java")
    if not java:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def check_java() -> int:
    v = java_version()
    if v is None:
        raise EnvironmentError_(
            "Java was not found: Spark 4 needs Java 17 or newer. Install a JDK 17+ "
            "(e.g. 'apt-get install openjdk-17-jre-headless') or set JAVA_HOME."
        )
    if v < MIN_JAVA:
        raise EnvironmentError_(
            f"Java {v} found, but Spark 4 needs Java {MIN_JAVA} or newer; "
            f"install a JDK {MIN_JAVA}+ or point JAVA_HOME at one."
        )
    return v


#: Session settings the jobs rely on, unless set otherwise. Arrow makes pandas UDFs fast;
#: adaptive execution coalesces small shuffles, cached plans included: a persisted aggregation
#: (the metrics' distinct scores, a split's rows) otherwise keeps all spark.sql.shuffle.partitions
#: (200) for every later pass, which made each evaluation of a small test set ~8 s of empty tasks.
RUNTIME_DEFAULTS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
}


def _under_spark_submit() -> bool:
    # spark-submit starts the Python driver with the master already in the JVM's conf and
    # exports it; PYSPARK_GATEWAY_PORT is set when the JVM launched us.
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT") or os.environ.get("SPARK_MASTER_FROM_SUBMIT"))


def get_spark(app_name: str = "imbal-spark", conf: dict | None = None, log_level: str = "WARN"):
    """Build (or reuse) the SparkSession.

    ``conf`` holds extra Spark settings, e.g. from the ``spark:`` section of a config file.
    """
    from pyspark.sql import SparkSession

    conf = dict(conf or {})
    builder = SparkSession.builder.appName(app_name)
    if not _under_spark_submit():
        check_java()
        # Plain `python jobs/x.py`: nothing chose a master, so use this machine.
        conf.setdefault("spark.master", os.environ.get("IMBAL_SPARK_MASTER", "local[*]"))
        conf.setdefault("spark.pyspark.python", sys.executable)
        conf.setdefault("spark.pyspark.driver.python", sys.executable)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # Keep Spark's start-up logging at WARN unless the user has a Spark conf dir of their own.
        os.environ.setdefault("SPARK_CONF_DIR", SPARK_CONF_DIR)
    conf.setdefault("spark.ui.showConsoleProgress", "false")
    for k, v in conf.items():
        builder = builder.config(k, str(v))
    spark = builder.getOrCreate()
    # Defaults, applied only where nothing set them: a --conf of spark-submit (Airflow's
    # spark_conf), spark-defaults.conf or the config file's spark: section wins.
    for k, v in RUNTIME_DEFAULTS.items():
        if spark.conf.get(k, None) is None:
            spark.conf.set(k, v)
    spark.sparkContext.setLogLevel(log_level)
    log.info("Spark %s, master %s, app %s", spark.version, spark.sparkContext.master, app_name)
    return spark
