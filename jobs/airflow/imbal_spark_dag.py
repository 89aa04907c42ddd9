"""imbal-spark as a scheduled Airflow 3 DAG: distribution -> resample -> compare, once a day.

Each task is a ``SparkSubmitOperator`` running one of the project's spark-submit jobs:

* ``distribution``: ``jobs/class_distribution.py`` -> ``<run>/distribution/distribution.json``;
  runs first because it is cheap and fails fast on a missing, empty or unlabeled partition;
* ``resample``: ``jobs/resample.py`` -> ``<run>/resample/data/`` (Parquet) and ``summary.json``;
* ``compare``: ``jobs/compare.py`` -> ``<run>/compare/report.json`` (and its md/html/plots).

Paths are Jinja templates on the run's logical date (``{{ ds }}``), so every run reads its own
day's partition and writes under its own directory. Every task passes ``--mode overwrite`` to a
job that writes through a staged directory swapped in only when complete: a retried task
replaces its own run's output atomically, and can never reach another run's. Undefined template
variables are errors (StrictUndefined), so a run without a logical date fails loudly instead of
writing to a half-rendered path.

Settings come from ``conf/airflow.yaml`` (or the file named by ``IMBAL_SPARK_AIRFLOW_CONFIG``).
This file needs only Airflow, the Spark provider and PyYAML: imbal-spark itself runs in Spark's
environment, not in Airflow's.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import jinja2
import pendulum
import yaml
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG

CONFIG_ENV = "IMBAL_SPARK_AIRFLOW_CONFIG"
#: The checkout this file lives in (jobs/airflow/ -> the repository root).
REPO = Path(__file__).resolve().parents[2]

#: Task id -> the job it runs and the flags it takes besides the common ones.
TASKS = {
    "distribution": "jobs/class_distribution.py",
    "resample": "jobs/resample.py",
    "compare": "jobs/compare.py",
}

#: Every key of the DAG config, with its default (None: required).
KEYS = {
    "dag_id": "imbal_spark",
    "schedule": "@daily",
    "start_date": None,
    "catchup": False,
    "max_active_runs": 1,
    "tags": [],
    "conn_id": None,
    "retries": 2,
    "retry_delay_minutes": 5,
    "execution_timeout_minutes": 120,
    "project_dir": "",
    "input": None,
    "output_root": None,
    "job_config": None,
    "py_files": "",
    "archives": "",
    "spark_conf": {},
    "driver_python": "",
    "env_vars": {},
    "task_args": {},
}


class DagConfigError(ValueError):
    """The DAG config file is missing, unreadable or has a wrong key; names the key and file."""


def load_config(path: str | os.PathLike | None = None) -> dict:
    path = Path(path or os.environ.get(CONFIG_ENV) or REPO / "conf" / "airflow.yaml")
    if not path.is_file():
        raise DagConfigError(f"DAG config {str(path)!r} does not exist; set {CONFIG_ENV} to the "
                             f"imbal-spark Airflow config (see conf/airflow.yaml)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise DagConfigError(f"DAG config {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise DagConfigError(f"DAG config {str(path)!r} must hold a mapping of keys")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise DagConfigError(f"{path}: unknown key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    cfg = {k: raw.get(k) if raw.get(k) is not None else v for k, v in KEYS.items()}
    for k, v in cfg.items():
        if v is None:
            raise DagConfigError(f"{path}: missing required key {k!r}")
    unknown_tasks = sorted(set(cfg["task_args"]) - set(TASKS))
    if unknown_tasks:
        raise DagConfigError(f"{path}: task_args names unknown task {unknown_tasks[0]!r}; "
                             f"tasks are {', '.join(TASKS)}")
    for k in ("spark_conf", "env_vars", "task_args"):
        if not isinstance(cfg[k], dict):
            raise DagConfigError(f"{path}: key {k!r} must be a mapping, got {cfg[k]!r}")
    for task, args in cfg["task_args"].items():
        if not isinstance(args, list):
            raise DagConfigError(f"{path}: task_args.{task} must be a list of flags, got {args!r}")
    for k in ("input", "output_root"):
        if "{{" not in str(cfg[k]):
            # A fixed path would make every run read the same data and overwrite the same output.
            raise DagConfigError(f"{path}: key {k!r} must be templated on the run (e.g. '{{{{ ds }}}}'), "
                                 f"got {cfg[k]!r}")
    cfg["_path"] = str(path)
    return cfg


def _abs(project: Path, p: str) -> str:
    """A project-relative path made absolute; a URI, an absolute path or '' as it is."""
    if not p or "://" in p or p.startswith("/"):
        return p
    return str(project / p)


def build_dag(cfg: dict) -> DAG:
    project = Path(cfg["project_dir"]) if cfg["project_dir"] else REPO
    job_config = _abs(project, cfg["job_config"])
    # --files ships the job config; the job finds it by name (YARN/K8s cluster mode put it in the
    # driver's working directory, client mode resolves it through spark.files).
    config_name = Path(job_config.split("#")[-1]).name
    archives = ",".join(_abs(project, a.strip()) for a in str(cfg["archives"]).split(",") if a.strip())
    py_files = ",".join(_abs(project, p.strip()) for p in str(cfg["py_files"]).split(",") if p.strip())
    spark_conf = {str(k): str(v) for k, v in cfg["spark_conf"].items()}
    if cfg["driver_python"]:
        # Client mode: the driver runs next to Airflow, with the project's interpreter (which has
        # the dependencies), not the executors' ./environment nor Airflow's own.
        spark_conf["spark.pyspark.driver.python"] = _abs(project, str(cfg["driver_python"]))
    out = str(cfg["output_root"]).rstrip("/")
    inp = str(cfg["input"])

    outputs = {task: f"{out}/{task}" for task in TASKS}
    args = {
        "distribution": ["--input", inp, "--output", outputs["distribution"]],
        "resample": ["--input", inp, "--output", outputs["resample"]],
        "compare": ["--input", inp, "--output", outputs["compare"]],
    }

    dag = DAG(
        dag_id=cfg["dag_id"],
        description="class distribution, resampling and strategy comparison of a day's data",
        schedule=cfg["schedule"],
        start_date=pendulum.parse(str(cfg["start_date"]), tz="UTC"),
        catchup=bool(cfg["catchup"]),
        max_active_runs=int(cfg["max_active_runs"]),
        tags=list(cfg["tags"]),
        template_undefined=jinja2.StrictUndefined,
        doc_md=__doc__,
        default_args={
            "owner": "imbal-spark",
            "retries": int(cfg["retries"]),
            "retry_delay": timedelta(minutes=float(cfg["retry_delay_minutes"])),
            "execution_timeout": timedelta(minutes=float(cfg["execution_timeout_minutes"])),
        },
    )
    with dag:
        tasks = [
            SparkSubmitOperator(
                task_id=task,
                conn_id=cfg["conn_id"],
                application=_abs(project, job),
                name=f"imbal-spark {task} {{{{ ds }}}}",
                application_args=[*args[task], "--config", config_name, "--mode", "overwrite",
                                  *map(str, cfg["task_args"].get(task, []))],
                files=job_config,
                py_files=py_files or None,
                archives=archives or None,
                conf=spark_conf or None,
                env_vars={str(k): str(v) for k, v in cfg["env_vars"].items()} or None,
            )
            for task, job in TASKS.items()
        ]
        for upstream, downstream in zip(tasks, tasks[1:]):
            upstream >> downstream
    return dag


dag = build_dag(load_config())
