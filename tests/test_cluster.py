"""Where users run it: the spark-submit packaging, a real standalone cluster, and the Docker files.

The cluster test starts a Spark standalone master and one worker from the pip package on
127.0.0.1 (free ports, own work dir), runs the README's standalone ``spark-submit`` block on
it word for word (only the master address, ``/shared/`` and the interpreter paths replaced),
checks the Parquet and reports written, that the executors ran the shipped environment and
code, and stops both daemons by process group even when the test fails.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, spark_submit

pytestmark = pytest.mark.slow

DIST = ROOT / "dist"
PYSPARK_HOME = Path(spark_submit()).parents[1]
README = ROOT / "README.md"
# Bounds, not expectations: alone on 2 cores the submit costs ~150 CPU-s (about a minute);
# this only stops a hung run (killing everything); a machine shared 8-fold took 407 s.
SUBMIT_TIMEOUT = 600
README_MARKER = "<!-- standalone-submit"


# -- helpers -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    """PIDs of live processes in a process group (from /proc; zombies don't count)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(d))
    return out


def stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the whole process group (daemon, executors, Python workers), then SIGKILL."""
    pgid = proc.pid  # started with start_new_session: its own group
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None and not group_members(pgid):
                return
            time.sleep(0.2)
    proc.poll()


def run_bounded(cmd, timeout, **kw) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on timeout kill the whole group, not just it."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(p, grace=5)
        out, err = p.communicate()
        raise AssertionError(f"timed out after {timeout}s: {shlex.join(cmd)}\n{err[-3000:]}")
    finally:
        if p.poll() is None:
            stop_group(p, grace=5)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def master_state(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as r:
        return json.load(r)


@contextmanager
def standalone_cluster(workdir: Path, cores: int = 2, memory: str = "2g", timeout: float = 60):
    """A Spark standalone master and one worker on 127.0.0.1; yields (master_url, ui_port, info).

    Both daemons are stopped by process group on the way out, whatever happened inside.
    """
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = dict(os.environ, SPARK_HOME=str(PYSPARK_HOME), SPARK_LOCAL_IP="127.0.0.1",
               SPARK_DAEMON_MEMORY="512m", SPARK_LOG_DIR=str(workdir / "logs"))
    spark_class = str(PYSPARK_HOME / "bin" / "spark-class")
    (workdir / "worker").mkdir(parents=True, exist_ok=True)
    procs = []
    logs = {}
    info = {"pgids": [], "work_dir": workdir / "worker"}
    try:
        for name, args in [
            ("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                        "--port", str(port), "--webui-port", str(ui)]),
            ("worker", ["org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
                        "--host", "127.0.0.1", "--work-dir", str(workdir / "worker"),
                        "--cores", str(cores), "--memory", memory, "--webui-port", str(worker_ui)]),
        ]:
            logs[name] = open(workdir / f"{name}.log", "w")
            p = subprocess.Popen([spark_class, *args], stdout=logs[name], stderr=subprocess.STDOUT,
                                 env=env, cwd=workdir, start_new_session=True)
            procs.append(p)
            info["pgids"].append(p.pid)
        deadline = time.monotonic() + timeout
        while True:
            for name, p in zip(("master", "worker"), procs):
                if p.poll() is not None:
                    raise AssertionError(f"{name} exited with {p.returncode}:\n"
                                         + (workdir / f"{name}.log").read_text()[-3000:])
            try:
                state = master_state(ui)
                if state.get("aliveworkers", 0) >= 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no worker registered within {timeout}s:\n"
                                     + (workdir / "worker.log").read_text()[-3000:])
            time.sleep(0.5)
        yield f"spark://127.0.0.1:{port}", ui, info
    finally:
        for p in reversed(procs):
            stop_group(p)
        for f in logs.values():
            f.close()


def readme_standalone_commands(master_url: str, shared: Path) -> list[list[str]]:
    """The spark-submit commands of the README's standalone block, made runnable here."""
    text = README.read_text()
    m = re.search(r"^" + re.escape(README_MARKER) + r".*-->\n```(?:bash|sh)?\n(.*?)```", text, re.S | re.M)
    assert m, f"README.md has no line {README_MARKER!r} followed by the tested standalone block"
    script = m.group(1).replace("\\\n", " ")
    cmds = []
    for line in script.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        argv = shlex.split(line)
        assert argv[0] == "spark-submit", f"unexpected command in the README block: {line}"
        sub = []
        for a in argv:
            a = a.replace("spark://MASTER_HOST:7077", master_url).replace("/shared/", f"{shared}/")
            if a == "spark-submit":
                a = spark_submit()
            # The README's driver Python is the project's .venv; here it is the one running us.
            a = a.replace("spark.pyspark.driver.python=.venv/bin/python",
                          f"spark.pyspark.driver.python={sys.executable}")
            sub.append(a)
        cmds.append(sub)
    return cmds


def arg(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


# -- packaging ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def package():
    """`make package` (scripts/package.py): cached under build/, so usually a few seconds."""
    r = run_bounded([sys.executable, str(ROOT / "scripts" / "package.py")], timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-4000:]
    files = {p.name: p for p in DIST.iterdir()}
    return {"wheel": files["imbal_spark-%s-py3-none-any.whl" % setup_cfg()["metadata"]["version"]],
            "zip": files["imbal_spark.zip"], "env": files["imbal_spark_env.tar.gz"],
            "stderr": r.stderr}


def setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def install_requires() -> dict[str, str]:
    lines = setup_cfg()["options"]["install_requires"].split("\n")
    reqs = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower(): r for r in reqs}


def test_zip_holds_the_wheels_package_and_every_module(package):
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "imbal_spark").rglob("*.py")}
    with zipfile.ZipFile(package["wheel"]) as w:
        in_wheel = {n for n in w.namelist() if n.startswith("imbal_spark/")}
    with zipfile.ZipFile(package["zip"]) as z:
        names = set(z.namelist())
        # byte-identical to the sources (modules and package data alike)
        for n in names:
            assert z.read(n) == (ROOT / n).read_bytes(), f"{n} in the zip differs from the source"
    assert names == in_wheel
    assert modules <= names, sorted(modules - names)


def test_wheel_requires_what_setup_cfg_says(package):
    with zipfile.ZipFile(package["wheel"]) as w:
        meta = next(n for n in w.namelist() if n.endswith(".dist-info/METADATA"))
        text = w.read(meta).decode()
    requires = {re.split(r"[<>=!~\[; (]", ln.split(":", 1)[1].strip(), maxsplit=1)[0].lower()
                for ln in text.splitlines() if ln.startswith("Requires-Dist:") and "extra ==" not in ln}
    assert requires == set(install_requires())


def test_env_archive_has_the_native_deps_at_the_tested_versions(package):
    from importlib.metadata import version

    with tarfile.open(package["env"]) as t:
        names = t.getnames()
    dist_infos = {}
    for n in names:
        m = re.match(r"lib/python3\.\d+/site-packages/([^/]+)-([^-/]+)\.dist-info/METADATA$", n)
        if m:
            dist_infos[m.group(1).lower().replace("_", "-")] = m.group(2)
    assert "bin/python" in names and "bin/activate" in names
    for dep in ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy", "pyyaml"):
        assert dist_infos.get(dep) == version(dep), (dep, dist_infos.get(dep), version(dep))
    # The cluster brings pyspark; the zip brings imbal_spark; tests and pip are dead weight.
    assert "pyspark" not in dist_infos and "imbal-spark" not in dist_infos
    assert not any("/site-packages/imbal_spark/" in n or "/site-packages/pyspark/" in n for n in names)
    assert not any("/tests/" in n for n in names)
    assert "pip" not in dist_infos


def test_package_is_cached_and_reproducible(package):
    before = {k: (package[k].stat().st_mtime_ns, package[k].read_bytes() if k == "zip" else None)
              for k in ("wheel", "zip", "env")}
    t0 = time.monotonic()
    r = run_bounded([sys.executable, str(ROOT / "scripts" / "package.py")], timeout=300, cwd=ROOT)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    assert "is up to date" in r.stderr and "env-venv" not in r.stderr, r.stderr[-2000:]
    assert took < 60, f"an up-to-date `make package` took {took:.0f}s"
    assert package["wheel"].stat().st_mtime_ns == before["wheel"][0]
    assert package["env"].stat().st_mtime_ns == before["env"][0]
    assert package["zip"].read_bytes() == before["zip"][1]


# -- the standalone cluster --------------------------------------------------------------------

def write_events(path: Path, rows: int = 2000, seed: int = 3):
    """A small imbalanced labelled data set as Parquet (the /shared/data/events of the README)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=8, n_informative=3, n_redundant=2,
                               weights=[0.9, 0.1], flip_y=0, random_state=seed)
    path.mkdir(parents=True)
    cols = {"id": pa.array(np.arange(rows, dtype=np.int64))}
    cols.update({f"f{j}": pa.array(X[:, j]) for j in range(X.shape[1])})
    cols["label"] = pa.array(y.astype(np.int64))
    pq.write_table(pa.table(cols), path / "part-00000.parquet")
    return X, y


#: Appended to the README's command in the test only: one strategy and no threshold-tuning
#: split keep the run short on 2 shared cores. The submit line itself is the README's, verbatim.
SHORTER = ["--strategies", "smote", "--validation-size", "0"]


def test_readme_standalone_submit_on_a_real_cluster(package, tmp_path):
    import pyarrow.parquet as pq
    from sklearn.model_selection import train_test_split

    t_start = time.monotonic()
    shared = tmp_path / "shared"
    X, y = write_events(shared / "data" / "events")
    submit_env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_DRIVER_PYTHON=sys.executable)
    submit_env.pop("PYSPARK_PYTHON", None)  # the command line decides the executors' Python
    with standalone_cluster(tmp_path / "cluster") as (master, ui, info):
        (cmd,) = readme_standalone_commands(master, shared)
        assert arg(cmd, "--master") == master
        assert arg(cmd, "--py-files") == "dist/imbal_spark.zip"
        assert arg(cmd, "--archives") == "dist/imbal_spark_env.tar.gz#environment"
        assert arg(cmd, "--files") == "conf/cluster.yaml" and arg(cmd, "--config") == "cluster.yaml"
        assert Path(cmd[cmd.index("--files") + 2]).name == "pipeline.py"
        t0 = time.monotonic()
        r = run_bounded(cmd + SHORTER, timeout=SUBMIT_TIMEOUT, cwd=ROOT, env=submit_env)
        print(f"pipeline on the cluster: {time.monotonic() - t0:.0f}s")
        assert r.returncode == 0, f"{shlex.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"

        # Negative control: without --files the name alone is not found (the lookup is real).
        i = cmd.index("--files")
        r = run_bounded(cmd[:i] + cmd[i + 2:], timeout=60, cwd=ROOT, env=submit_env)
        assert r.returncode == 2
        # (spark-submit merges the Python driver's stderr into its stdout)
        assert "error: config file 'cluster.yaml' does not exist" in r.stdout + r.stderr

        apps = master_state(ui)["completedapps"]

    # The application ran on this cluster, under the job's name, and finished.
    assert [a["name"] for a in apps] == ["imbal-spark pipeline"]
    assert apps[0]["state"] == "FINISHED", apps
    # The executor unpacked the environment and got the zip; its Python is the environment's
    # (spark.pyspark.python names it), which has neither pyspark nor imbal_spark: SMOTE's
    # pandas UDF ran there, so imbal_spark came from the zip and pyspark from Spark.
    (app_dir,) = info["work_dir"].glob("app-*")
    execs = [d for d in app_dir.iterdir() if d.is_dir()]
    assert execs and all((d / "imbal_spark.zip").exists() for d in execs)
    env_dir = execs[0] / "environment"
    site = next((env_dir / "lib").glob("python3.*/site-packages"))
    assert (env_dir / "bin" / "python").exists() and (site / "pandas").is_dir()
    assert not (site / "imbal_spark").exists() and not (site / "pyspark").exists()

    # No process of either daemon (or their executors and Python workers) is left.
    for pgid in info["pgids"]:
        assert group_members(pgid) == [], f"leftover processes in group {pgid}"

    out = Path(arg(cmd, "--output"))
    job_cfg = yaml.safe_load((ROOT / "conf" / "cluster.yaml").read_text())
    counts = {int(k): int(v) for k, v in zip(*np.unique(y, return_counts=True))}
    # distribution.json agrees with the data (numpy is the oracle for the counts).
    dist = json.loads((out / "distribution.json").read_text())
    assert dist["label_col"] == job_cfg["label_col"] == "label"
    assert dist["total_rows"] == len(y)
    assert {int(c["label"]): c["count"] for c in dist["classes"]} == counts
    # The training rows are scikit-learn's stratified split; SMOTE brought the minority up to the
    # majority; the written Parquet holds exactly those rows.
    y_train, y_test = train_test_split(y, test_size=job_cfg["test_size"], stratify=y, random_state=0)
    n_major = int(np.bincount(y_train).max())
    resampled = pq.read_table(out / "resampled")
    labels = resampled.column("label").to_numpy()
    assert {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))} == {0: n_major, 1: n_major}
    assert set(resampled.column_names) >= {f"f{j}" for j in range(X.shape[1])}
    summary = json.loads((out / "resample_summary.json").read_text())
    assert {int(k): v for k, v in summary["counts_after"].items()} == {0: n_major, 1: n_major}
    report = json.loads((out / "report.json").read_text())
    assert list(report["strategies"]) == ["smote"]
    smote = report["strategies"]["smote"]
    assert {int(k): v for k, v in smote["train_counts"].items()} == {0: n_major, 1: n_major}
    assert smote["metrics"]["n"] == len(y_test)
    assert smote["metrics"]["per_class"]["1"]["recall"] > 0.5
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")], "staging left behind"
    print(f"cluster test: {time.monotonic() - t_start:.0f}s")


def test_cluster_daemons_are_stopped_when_the_test_body_fails(tmp_path):
    """The finaliser runs on failure too: an exception inside the block leaves no process."""
    pgids = []
    with pytest.raises(RuntimeError, match="boom"):
        with standalone_cluster(tmp_path, cores=1, memory="512m") as (_, _, info):
            pgids = list(info["pgids"])
            assert all(group_members(g) for g in pgids)
            raise RuntimeError("boom")
    assert len(pgids) == 2
    assert all(group_members(g) == [] for g in pgids)


# -- Docker ------------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            op, _, rest = s.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_installs_what_setup_cfg_says():
    ins = dockerfile_instructions()
    base = [rest for op, rest in ins if op == "FROM"]
    assert base and all(re.match(r"python:3\.(1[1-9])[.-]", b.split()[0]) for b in base), base
    assert "bookworm" in base[-1], "openjdk-17 comes from Debian bookworm"
    runs = " && ".join(rest for op, rest in ins if op == "RUN")
    assert re.search(r"apt-get install [^&]*openjdk-17-jre-headless", runs)
    # The dependencies come from setup.cfg through pip, never from a hand-kept second list.
    pip_installs = re.findall(r"pip install ([^&;]*)", runs)
    assert pip_installs, "the image must pip-install the package"
    for args in pip_installs:
        targets = [a for a in shlex.split(args) if not a.startswith("-")]
        assert targets and all(t == "." or t.startswith("dist/imbal_spark") or t.startswith("/tmp/imbal_spark")
                               for t in targets), f"hand-listed packages in the image: {targets}"
    # What the image copies exists in the build context (the repository root).
    for op, rest in ins:
        if op == "COPY" and "--from" not in rest:
            for src in shlex.split(rest)[:-1]:
                if not src.startswith("--"):
                    assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    users = [rest for op, rest in ins if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must run as a non-root user"
    from packaging.specifiers import SpecifierSet

    image_python = re.match(r"python:(3\.\d+)", base[-1]).group(1)
    assert image_python in SpecifierSet(setup_cfg()["options"]["python_requires"].strip())


def test_compose_runs_the_tested_cluster_commands():
    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
    svc = compose["services"]
    assert {"master", "worker", "submit"} <= set(svc)
    for s in svc.values():
        build = s.get("build") or svc[s.get("extends", {}).get("service", "master")].get("build")
        assert build is None or (ROOT / "docker" / build["context"] / build["dockerfile"]).resolve() \
            == (ROOT / "docker" / "Dockerfile").resolve()

    def argv(s):
        c = s["command"]
        return shlex.split(c) if isinstance(c, str) else list(c)

    master, worker, submit = argv(svc["master"]), argv(svc["worker"]), argv(svc["submit"])
    assert "org.apache.spark.deploy.master.Master" in master
    port = master[master.index("--port") + 1]
    assert "org.apache.spark.deploy.worker.Worker" in worker
    url = f"spark://master:{port}"
    assert url in worker
    assert submit[0].endswith("spark-submit") and submit[submit.index("--master") + 1] == url
    app = next(a for a in submit if a.endswith(".py"))
    assert app.startswith("/opt/imbal-spark/") and (ROOT / app[len("/opt/imbal-spark/"):]).exists()
    i = submit.index(app)
    cfg = submit[submit.index("--config", i) + 1]
    assert (ROOT / cfg.replace("/opt/imbal-spark/", "")).exists()
    assert "depends_on" in svc["submit"] and "worker" in svc["submit"]["depends_on"]


def test_entrypoint_is_valid_bash_and_passes_other_commands_through(tmp_path):
    """The image's entrypoint: syntax, and the pass-through branch compose uses (tini stubbed)."""
    script = ROOT / "docker" / "entrypoint.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    # Run it with a stand-in for /usr/bin/tini that records what it would have executed.
    text = script.read_text().replace("/usr/bin/tini", str(tmp_path / "tini"))
    (tmp_path / "entrypoint.sh").write_text(text)
    (tmp_path / "tini").write_text('#!/bin/bash\nshift 2\nprintf "%s\\n" "$@"\n')
    (tmp_path / "tini").chmod(0o755)
    env = dict(os.environ, SPARK_HOME=str(PYSPARK_HOME), SPARK_DRIVER_BIND_ADDRESS="10.0.0.7")
    r = subprocess.run(["bash", str(tmp_path / "entrypoint.sh"), "spark-class", "x", "y z"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.splitlines() == ["spark-class", "x", "y z"], r
    r = subprocess.run(["bash", str(tmp_path / "entrypoint.sh"), "driver", "--properties-file", "p",
                        "--class", "org.apache.spark.deploy.PythonRunner", "local:///app.py"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"{PYSPARK_HOME}/bin/spark-submit", "--conf",
                                     "spark.driver.bindAddress=10.0.0.7", "--deploy-mode", "client",
                                     "--properties-file", "p", "--class",
                                     "org.apache.spark.deploy.PythonRunner", "local:///app.py"]
