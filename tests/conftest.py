import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    """One local Spark for the whole test session (a session costs ~6 s to start)."""
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[2]")
        .appName("imbal-spark-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def spark_submit() -> str:
    """The spark-submit that comes with the installed pyspark package."""
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def run_job(script, *args, submit=False, timeout=600, env=None):
    """Run ``jobs/<script>`` as a user would: ``python jobs/x.py`` or ``spark-submit jobs/x.py``."""
    path = str(ROOT / "jobs" / script)
    e = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    from imbal_spark.session import SPARK_CONF_DIR

    e.setdefault("SPARK_CONF_DIR", SPARK_CONF_DIR)  # Spark's own logs at WARN, as users are told
    e.update(env or {})
    if submit:
        cmd = [spark_submit(), "--master", "local[2]", "--conf", "spark.ui.enabled=false",
               "--conf", f"spark.pyspark.python={sys.executable}", path, *map(str, args)]
    else:
        cmd = [sys.executable, path, *map(str, args)]
    e.setdefault("IMBAL_SPARK_MASTER", "local[2]")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, cwd=ROOT)


@pytest.fixture
def job():
    return run_job
