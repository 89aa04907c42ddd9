"""The Airflow DAG jobs/airflow/imbal_spark_dag.py, checked with real Airflow 3 and the Spark provider.

Airflow lives in its own virtual environment (.venv-airflow, created here from
jobs/airflow/requirements.txt when missing: Airflow brings pandas 3, which .venv must not
get). Everything Airflow-side runs in a subprocess with that environment's interpreter and an
AIRFLOW_HOME under the test's tmp dir; results come back as JSON and files, checked here.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, spark_submit

pytestmark = pytest.mark.slow

DAGS = ROOT / "jobs" / "airflow"
CHECKS = Path(__file__).parent / "airflow_checks"
SHIPPED = yaml.safe_load((ROOT / "conf" / "airflow.yaml").read_text())
DAG_ID = SHIPPED["dag_id"]
TASKS = ["distribution", "resample", "compare"]
DAY, OTHER_DAY = "2024-05-01", "2024-04-30"


def run(cmd, env, timeout, cwd=ROOT) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    return r


@pytest.fixture(scope="module")
def airflow_bin() -> Path:
    """.venv-airflow/bin, created if missing or stale (what `make airflow-venv` runs)."""
    r = run([sys.executable, ROOT / "scripts" / "airflow_venv.py"], dict(os.environ), timeout=1200)
    assert r.returncode == 0, r.stderr[-4000:]
    bin_dir = Path(r.stdout.strip().splitlines()[-1])
    assert (bin_dir / "airflow").exists()
    return bin_dir


def airflow_env(home: Path, config: Path | None = None, **extra) -> dict:
    """A clean Airflow environment: own home and SQLite DB, our DAG folder, no examples."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "PYSPARK_", "IMBAL_SPARK_AIRFLOW"))}
    # The project's spark-submit (pyspark's bin/, which holds no python) on PATH, not .venv/bin.
    bin_dir = Path(spark_submit()).parent
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PATH": f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
    })
    if config is not None:
        env["IMBAL_SPARK_AIRFLOW_CONFIG"] = str(config)
    env.update(extra)
    return env


def inspect(airflow_bin: Path, env: dict, dates=(), configs=("-",)) -> dict:
    """{config: DagBag report} from tests/airflow_checks/inspect_dag.py, one Airflow process."""
    r = run([airflow_bin / "python", CHECKS / "inspect_dag.py", DAGS, "--dates", *dates,
             "--configs", *map(str, configs)], env, timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    last = [ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(last)


def order(tasks: dict) -> list[str]:
    """Task ids in dependency order; asserts the graph is a single chain."""
    roots = [t for t, i in tasks.items() if not i["upstream"]]
    assert len(roots) == 1, roots
    chain = roots
    while tasks[chain[-1]]["downstream"]:
        (nxt,) = tasks[chain[-1]]["downstream"]
        chain.append(nxt)
    assert len(chain) == len(tasks)
    return chain


def flag(args: list[str], name: str) -> str:
    assert args.count(name) == 1, (name, args)
    return args[args.index(name) + 1]


# -- the DAG as shipped, and broken configs ------------------------------------------------------

BAD_CONFIGS = {
    "unknown_key": ({"retires": 3}, "unknown key 'retires'"),
    "fixed_output": ({"output_root": "/data/imbal-spark/latest"},
                     "key 'output_root' must be templated on the run"),
    "no_conn": ({"conn_id": None}, "missing required key 'conn_id'"),
}


@pytest.fixture(scope="module")
def inspected(airflow_bin, tmp_path_factory):
    """The DagBag report for the shipped config ("-") and for each broken config."""
    home = tmp_path_factory.mktemp("airflow-inspect")
    paths = {}
    for name, (change, _) in BAD_CONFIGS.items():
        cfg = {k: v for k, v in {**SHIPPED, **change}.items() if v is not None}
        paths[name] = home / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(cfg))
    result = inspect(airflow_bin, airflow_env(home), dates=(DAY, OTHER_DAY),
                     configs=["-", *map(str, paths.values())])
    return {"shipped": result["-"], **{n: (result[str(p)], p) for n, p in paths.items()}}


@pytest.fixture(scope="module")
def shipped(inspected):
    return inspected["shipped"]


def test_dag_imports_without_errors_and_has_the_three_tasks_in_order(shipped):
    assert shipped["import_errors"] == {}
    assert list(shipped["dags"]) == [DAG_ID]
    dag = shipped["dags"][DAG_ID]
    assert order(dag["tasks"]) == TASKS
    assert dag["schedule"] == SHIPPED["schedule"]
    assert dag["catchup"] is SHIPPED["catchup"]
    assert dag["template_undefined"] == "StrictUndefined"
    jobs = {"distribution": "class_distribution.py", "resample": "resample.py", "compare": "compare.py"}
    for task, info in dag["tasks"].items():
        assert info["operator"] == "airflow.providers.apache.spark.operators.spark_submit.SparkSubmitOperator"
        assert info["conn_id"] == SHIPPED["conn_id"]
        assert info["retries"] == SHIPPED["retries"]
        assert info["retry_delay_s"] == SHIPPED["retry_delay_minutes"] * 60
        assert info["application"] == str(ROOT / "jobs" / jobs[task])
        assert Path(info["application"]).exists()
        assert info["files"] == str(ROOT / SHIPPED["job_config"])
        assert info["py_files"] == str(ROOT / SHIPPED["py_files"])
        assert info["archives"] == str(ROOT / SHIPPED["archives"])
        assert info["conf"] == {**{k: str(v) for k, v in SHIPPED["spark_conf"].items()},
                                "spark.pyspark.driver.python": str(ROOT / SHIPPED["driver_python"])}
        args = info["application_args"]
        assert flag(args, "--config") == Path(SHIPPED["job_config"]).name
        assert flag(args, "--mode") == "overwrite"
        assert {"application_args", "application", "files", "name"} <= set(info["template_fields"])


def test_templates_render_to_per_run_paths(shipped):
    tasks = shipped["dags"][DAG_ID]["tasks"]
    outputs = {}
    for day in (DAY, OTHER_DAY):
        run_root = SHIPPED["output_root"].replace("{{ ds }}", day)
        for task in TASKS:
            r = tasks[task]["rendered"][day]
            args = r["application_args"]
            assert flag(args, "--input") == SHIPPED["input"].replace("{{ ds }}", day)
            assert flag(args, "--output") == f"{run_root}/{task}"
            assert day in r["name"] and "{{" not in json.dumps(r)
            outputs[(day, task)] = flag(args, "--output")
    # Every (run, task) writes its own directory; no output is inside another one.
    paths = sorted(outputs.values())
    assert len(set(paths)) == len(paths) == 6
    assert not any(b.startswith(a + "/") for a in paths for b in paths if a != b)


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_dag_config_is_an_import_error_naming_the_key(inspected, name):
    result, path = inspected[name]
    message = BAD_CONFIGS[name][1]
    assert result["dags"] == {}
    (err,) = result["import_errors"].values()
    assert message in err and str(path) in err, err


# -- end to end against local Spark ------------------------------------------------------------

def write_day(root: Path, day: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A small imbalanced labelled data set as the day's partition (Parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=600, n_features=6, n_informative=3, n_redundant=1,
                               weights=[0.85, 0.15], flip_y=0, random_state=seed)
    part = root / f"dt={day}"
    part.mkdir(parents=True)
    cols = {"id": pa.array(np.arange(len(y), dtype=np.int64))}
    cols.update({f"f{j}": pa.array(X[:, j]) for j in range(X.shape[1])})
    cols["label"] = pa.array(y.astype(np.int64))
    pq.write_table(pa.table(cols), part / "part-00000.parquet")
    return X, y


def test_dag_runs_end_to_end_and_a_rerun_replaces_only_its_own_output(airflow_bin, tmp_path):
    import pyarrow.parquet as pq
    from imblearn.over_sampling import SMOTE

    events, runs = tmp_path / "events", tmp_path / "runs"
    X, y = write_day(events, DAY, seed=7)
    job_cfg = yaml.safe_load((ROOT / SHIPPED["job_config"]).read_text())
    # Another run's finished output, which nothing of this run may touch.
    other = runs / OTHER_DAY / "compare"
    other.mkdir(parents=True)
    (other / "report.json").write_text('{"run": "other"}')

    cfg = dict(SHIPPED)
    cfg.update({
        "input": f"{events}/dt={{{{ ds }}}}",
        "output_root": f"{runs}/{{{{ ds }}}}",
        "retries": 0,
        # Local mode on this machine: .venv's interpreter has imbal-spark installed, so no
        # zip or packed environment is shipped (tests/test_cluster.py covers those).
        "py_files": "", "archives": "",
        "spark_conf": {"spark.pyspark.python": sys.executable,
                       "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2",
                       "spark.driver.memory": "1g"},
        "driver_python": sys.executable,
        # Two strategies and no threshold tuning keep the comparison short; the DAG is the same.
        "task_args": {"compare": ["--strategies", "none,class_weight", "--validation-size", "0"]},
    })
    cfg_path = tmp_path / "airflow.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = airflow_env(tmp_path / "airflow", cfg_path,
                      AIRFLOW_CONN_SPARK_IMBAL=json.dumps({"conn_type": "spark", "host": "local[2]"}))
    af = str(airflow_bin / "airflow")

    for cmd, timeout in [([af, "db", "migrate"], 300), ([af, "dags", "reserialize"], 180)]:
        r = run(cmd, env, timeout)
        assert r.returncode == 0, f"{shlex.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    r = run([af, "dags", "test", DAG_ID, DAY], env, timeout=900)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-6000:]

    day = runs / DAY
    # distribution: the counts of the day's partition (numpy is the oracle).
    dist = json.loads((day / "distribution" / "distribution.json").read_text())
    counts = Counter(y.tolist())
    assert {int(c["label"]): c["count"] for c in dist["classes"]} == dict(counts)
    assert dist["total_rows"] == len(y)

    # resample: SMOTE with the job config's settings; imbalanced-learn gives the class counts.
    _, y_res = SMOTE(k_neighbors=job_cfg["k_neighbors"], random_state=job_cfg["seed"]).fit_resample(X, y)
    data = pq.read_table(day / "resample" / "data")
    assert dict(Counter(data.column("label").to_pylist())) == dict(Counter(y_res.tolist()))
    assert set(data.column_names) >= {"f0", "f5", "label"}
    summary = json.loads((day / "resample" / "summary.json").read_text())
    assert summary["method"] == "smote"
    assert {int(k): v for k, v in summary["counts_before"].items()} == dict(counts)
    assert {int(k): v for k, v in summary["counts_after"].items()} == dict(Counter(y_res.tolist()))

    # compare: both strategies trained on the same stratified split (scikit-learn's counts),
    # with scikit-learn's 'balanced' class weights, and measured on the same test rows.
    from sklearn.model_selection import train_test_split
    from sklearn.utils.class_weight import compute_class_weight

    y_train, y_test = train_test_split(y, test_size=job_cfg["test_size"], stratify=y, random_state=0)
    report = json.loads((day / "compare" / "report.json").read_text())
    assert set(report["strategies"]) == {"none", "class_weight"}
    none, weighted = report["strategies"]["none"], report["strategies"]["class_weight"]
    for entry in (none, weighted):
        assert {int(k): v for k, v in entry["train_counts"].items()} == dict(Counter(y_train.tolist()))
        assert entry["metrics"]["n"] == len(y_test)
        assert 0.5 <= entry["metrics"]["accuracy"] <= 1.0
    expected_w = compute_class_weight("balanced", classes=np.array([0, 1]), y=y_train)
    assert [weighted["class_weights"][k] for k in ("0", "1")] == pytest.approx(expected_w.tolist())
    assert (day / "compare" / "report.html").stat().st_size > 0

    # A rerun of a task (what a retry does) atomically replaces that task's output of this run
    # and nothing else: not the run's other outputs, not another run's.
    stale = day / "resample" / "STALE_MARKER"
    stale.write_text("from an earlier attempt")
    untouched = {p: p.stat().st_mtime_ns for p in [day / "distribution" / "distribution.json",
                                                  day / "compare" / "report.json",
                                                  other / "report.json"]}
    r = run([af, "tasks", "test", DAG_ID, "resample", DAY], env, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    assert not stale.exists(), "the rerun must replace the output directory as a whole"
    data2 = pq.read_table(day / "resample" / "data")
    assert dict(Counter(data2.column("label").to_pylist())) == dict(Counter(y_res.tolist()))
    for p, mtime in untouched.items():
        assert p.stat().st_mtime_ns == mtime, f"{p} was touched by another task's rerun"
    assert json.loads((other / "report.json").read_text()) == {"run": "other"}
    leftovers = [p.name for p in day.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"staging directories left behind: {leftovers}"
    assert sorted(p.name for p in runs.iterdir()) == [OTHER_DAY, DAY]
