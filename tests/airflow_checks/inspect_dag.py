"""Run inside the Airflow virtual environment by tests/test_airflow.py; prints one JSON object.

    .venv-airflow/bin/python tests/airflow_checks/inspect_dag.py DAGS_FOLDER --dates DS... --configs CFG...

For each DAG config file CFG (``-``: none set, the DAG's default), loads the DAG folder the way
the scheduler does (DagBag) with IMBAL_SPARK_AIRFLOW_CONFIG=CFG, and reports import errors,
every DAG's tasks with their SparkSubmitOperator settings and dependencies, and each task's
templated fields rendered for each logical date DS (YYYY-MM-DD) with the DAG's own Jinja
environment (StrictUndefined included). One process for all configs: importing Airflow is the
slow part. Prints {CFG: result} as one JSON line.
"""

import argparse
import json
import os

import pendulum
from airflow.dag_processing.dagbag import DagBag


def context_for(ds: str) -> dict:
    # The date variables Airflow puts in a scheduled run's context.
    logical = pendulum.parse(ds, tz="UTC")
    return {"ds": logical.to_date_string(), "ds_nodash": logical.format("YYYYMMDD"),
            "ts": logical.isoformat(), "ts_nodash": logical.format("YYYYMMDDTHHmmss"),
            "logical_date": logical, "data_interval_start": logical,
            "data_interval_end": logical.add(days=1), "run_id": f"scheduled__{logical.isoformat()}"}


def inspect(folder: str, dates: list[str]) -> dict:
    bag = DagBag(dag_folder=folder)  # examples are off through AIRFLOW__CORE__LOAD_EXAMPLES
    out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
    for dag_id, dag in bag.dags.items():
        env = dag.get_template_env()
        tasks = {}
        for t in dag.tasks:
            info = {
                "operator": f"{type(t).__module__}.{type(t).__name__}",
                "upstream": sorted(t.upstream_task_ids),
                "downstream": sorted(t.downstream_task_ids),
                "conn_id": t._conn_id,
                "retries": t.retries,
                "retry_delay_s": t.retry_delay.total_seconds(),
                "application": t.application,
                "application_args": t.application_args,
                "files": t.files,
                "py_files": t.py_files,
                "archives": t._archives,
                "conf": t.conf,
                "env_vars": t.env_vars,
                "template_fields": list(t.template_fields),
                "rendered": {},
            }
            for ds in dates:
                ctx = context_for(ds)
                info["rendered"][ds] = {f: t.render_template(getattr(t, f), ctx, jinja_env=env)
                                        for f in ("application", "application_args", "name", "files")}
            tasks[t.task_id] = info
        out["dags"][dag_id] = {
            "schedule": str(dag.schedule),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "template_undefined": dag.template_undefined.__name__,
            "tasks": tasks,
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--dates", nargs="*", default=[])
    p.add_argument("--configs", nargs="+", default=["-"])
    a = p.parse_args()
    results = {}
    for cfg in a.configs:
        if cfg == "-":
            os.environ.pop("IMBAL_SPARK_AIRFLOW_CONFIG", None)
        else:
            os.environ["IMBAL_SPARK_AIRFLOW_CONFIG"] = cfg
        results[cfg] = inspect(a.folder, a.dates)
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
