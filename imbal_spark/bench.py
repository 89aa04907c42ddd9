"""Measurement library of the benchmark (``jobs/benchmark.py``, ``make bench``).

Every measured run is a separate process tree started the way a user starts it: imbal-spark's
SMOTE is ``spark-submit jobs/resample.py`` (its own JVM and start-up), the I/O floor is
``spark-submit jobs/benchmark.py floor``, imbalanced-learn is ``python -m imbal_spark.bench
baseline`` (its own interpreter and imports). :func:`run_measured` times a tree from launch to
exit and polls ``/proc`` for its memory:

* each process is put in a role: ``jvm`` (the Spark driver JVM; in local mode the executors live
  in it), ``python_driver`` (the job's Python process), ``python_workers`` (``pyspark.daemon``
  and the workers it forks), ``other`` (the launcher shell);
* ``peak_rss_mb`` of a role is the largest peak resident set (the kernel's ``VmHWM``, so a spike
  between two polls is not missed) of any one of its processes;
* ``peak_anon_mb`` of a role is the largest anonymous resident memory (``RssAnon``: heap, stacks,
  arrays; not the pages of shared libraries mapped from files, which peak RSS also counts and
  whose resident share depends on the page cache) seen in one of its processes at a poll (a
  forked worker's also counts the pages it shares copy-on-write with ``pyspark.daemon``);
* ``peak_sum_mb`` is the largest sum over the role's live processes at one poll, counted as PSS
  for Python processes (forked workers share the daemon's pages; PSS splits them fairly);
* CPU seconds come from ``wait4`` (the tree's user + system time once every process is reaped).

Nothing here runs Spark work on the harness's behalf while a run is being timed; the quality
models (:func:`quality`) are trained afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np

from .errors import ConfigError

log = logging.getLogger("imbal_spark.bench")

MB = 1024 * 1024
#: Poll interval of the memory sampler (s).
POLL_S = 0.2
#: A Spark run that takes longer than this is stopped and reported as failed (a hang, not a result).
SPARK_RUN_TIMEOUT_S = 3600
#: Holdout rows are drawn from generator blocks numbered from here: the same distribution as the
#: training sets (same seed, centroids and mixing) but random streams no training set uses.
HOLDOUT_FIRST_BLOCK = 1 << 20
ROLES = ("jvm", "python_driver", "python_workers", "other")
ROLE_NAMES = {"jvm": "driver JVM", "python_driver": "Python driver", "python_workers": "Python workers",
              "other": "launcher"}


# -- sizes ----------------------------------------------------------------------------------

_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_size(v) -> int:
    """``300k`` -> 300000, ``1M`` / ``1m`` -> 1000000, ``2.5M`` -> 2500000, 20000 -> 20000."""
    if isinstance(v, bool):
        raise ConfigError(f"sizes: {v!r} is not a row count; give e.g. 300k, 1M or 20000")
    if isinstance(v, (int, np.integer)):
        n = int(v)
    elif isinstance(v, float) and v.is_integer():
        n = int(v)
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgG]?)\s*", str(v))
        if not m:
            raise ConfigError(f"sizes: {v!r} is not a row count; give e.g. 300k, 1M or 20000")
        n = round(float(m.group(1)) * _SUFFIX[m.group(2).lower()])
    if n <= 0:
        raise ConfigError(f"sizes: {v!r} must be a positive row count")
    return n


def parse_sizes(v) -> list[int]:
    if v is None:
        return []
    items = v if isinstance(v, (list, tuple)) else str(v).split(",")
    sizes = [parse_size(x) for x in items if str(x).strip()]
    if not sizes:
        raise ConfigError("sizes is empty; give at least one row count, e.g. --sizes 300k,1M")
    return sorted(set(sizes))


def human(n: int) -> str:
    for unit, f in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= f and n % (f / 10) == 0:
            s = f"{n / f:.1f}".rstrip("0").rstrip(".")
            return s + unit
    return f"{n:,}"


# -- the process-tree sampler ------------------------------------------------------------------

def _ppid_map() -> dict[int, int]:
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                s = f.read()
            # the command name may hold spaces and parentheses: fields resume after the last ')'
            out[int(name)] = int(s[s.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return out


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, parents before children."""
    children = defaultdict(list)
    for pid, ppid in _ppid_map().items():
        children[ppid].append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(sorted(children.get(pid, ())))
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def classify(cmd: list[str], parent_role: str | None) -> str:
    """The role of a process from its command line (and its parent's role: a worker forked by
    ``pyspark.daemon`` keeps the daemon's command line, and so its role)."""
    if parent_role == "python_workers":
        return "python_workers"
    if not cmd:
        return parent_role or "other"
    exe = os.path.basename(cmd[0])
    head = " ".join(cmd[:8])
    if "pyspark.daemon" in head or "pyspark.worker" in head:
        return "python_workers"
    if exe == "java":
        return "jvm"
    if exe.startswith("python"):
        return "python_driver"
    return "other"


def _status_kb(pid: int) -> tuple[int, int, int]:
    """(VmRSS, VmHWM, RssAnon) in kB; zeros for a zombie or a vanished process, RssAnon None on a
    kernel that does not report it (before Linux 4.5)."""
    rss = hwm = 0
    anon = None
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith(b"RssAnon:"):
                    anon = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, hwm, anon


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
        fields = s[s.rindex(b")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return 0.0


def _start_time(pid: int) -> int | None:
    """A process's start time (clock ticks since boot): with the pid, it names one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
        return int(s[s.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _pss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class TreeSampler:
    """Polls the memory of a process tree (see the module docstring for what is recorded)."""

    def __init__(self, root: int):
        self.root = root
        self.proc_peak_kb: dict[int, int] = {}
        self.proc_anon_kb: dict[int, int] = {}
        self.proc_role: dict[int, str] = {}
        self.role_sum_peak_kb = defaultdict(int)
        self.role_max_procs = defaultdict(int)
        self.tree_peak_kb = 0
        self.samples = 0
        self.proc_cpu: dict[int, float] = {}
        self.started: dict[int, int | None] = {}

    def sample(self) -> int:
        """One poll; returns the tree's current resident memory in bytes (for a memory cap)."""
        total, sums, counts = 0, defaultdict(int), defaultdict(int)
        ppid = _ppid_map()
        children = defaultdict(list)
        for pid, pp in ppid.items():
            children[pp].append(pid)
        todo = [(self.root, None, None)]
        while todo:
            pid, parent_role, parent_cmd = todo.pop(0)
            if pid not in ppid and pid != self.root:
                continue
            if pid not in self.started:
                self.started[pid] = _start_time(pid)
            cmd = _cmdline(pid)
            # An exiting process has no command line any more: it keeps the role it had.
            role = classify(cmd, parent_role) if cmd else self.proc_role.get(pid, parent_role or "other")
            todo.extend((c, role, cmd) for c in sorted(children.get(pid, ())))
            if cmd and cmd == parent_cmd and role != "python_workers":
                # a child between vfork/posix_spawn and exec shares its parent's memory (and shows
                # its command line): counting it would count the parent twice
                continue
            rss, hwm, anon = _status_kb(pid)
            if rss == 0 and hwm == 0:
                continue
            if self.proc_role.get(pid, "other") == "other" or role != "other":
                self.proc_role[pid] = role
            role = self.proc_role[pid]
            self.proc_peak_kb[pid] = max(self.proc_peak_kb.get(pid, 0), hwm, rss)
            if anon is not None:
                self.proc_anon_kb[pid] = max(self.proc_anon_kb.get(pid, 0), anon)
            self.proc_cpu[pid] = max(self.proc_cpu.get(pid, 0.0), _cpu_s(pid))
            mem = rss
            if role.startswith("python"):
                pss = _pss_kb(pid)
                mem = pss if pss is not None else rss
            sums[role] += mem
            counts[role] += 1
            total += mem
        for role, v in sums.items():
            self.role_sum_peak_kb[role] = max(self.role_sum_peak_kb[role], v)
            self.role_max_procs[role] = max(self.role_max_procs[role], counts[role])
        self.tree_peak_kb = max(self.tree_peak_kb, total)
        self.samples += 1
        return total * 1024

    def stop_leftovers(self) -> list[int]:
        """Stop processes of this tree still alive after the run (pyspark.daemon puts itself in
        a process group of its own, so the run's group kill does not reach it): only the pids
        seen in the tree, and only if the pid still names the same process."""
        stopped = []
        for pid, start in self.started.items():
            if pid == os.getpid() or start is None or _start_time(pid) != start:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                stopped.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
        return stopped

    def report(self) -> dict:
        mem = {}
        for role in ROLES:
            peaks = [kb for pid, kb in self.proc_peak_kb.items() if self.proc_role.get(pid) == role]
            if not peaks:
                continue
            cpu = sum(v for pid, v in self.proc_cpu.items() if self.proc_role.get(pid) == role)
            anon = [kb for pid, kb in self.proc_anon_kb.items() if self.proc_role.get(pid) == role]
            mem[role] = {"peak_rss_mb": round(max(peaks) / 1024, 1),
                         "peak_anon_mb": round(max(anon) / 1024, 1) if anon else None,
                         "peak_sum_mb": round(self.role_sum_peak_kb[role] / 1024, 1), "cpu_s": round(cpu, 1),
                         "processes": len(peaks), "max_concurrent": self.role_max_procs[role]}
        return {"memory": mem, "cpu_s_sampled": round(sum(self.proc_cpu.values()), 1),
                "peak_process_rss_mb": round(max(self.proc_peak_kb.values(), default=0) / 1024, 1),
                "peak_tree_mb": round(self.tree_peak_kb / 1024, 1), "memory_samples": self.samples}


def _kill_group(pgid: int) -> None:
    """Stop the process group this module started (TERM, then KILL after a grace period)."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.1)


def run_measured(cmd: list[str], *, log_path: str, env: dict | None = None, cwd: str | None = None,
                 timeout: float | None = None, memory_cap: float | None = None,
                 poll: float = POLL_S) -> dict:
    """Run ``cmd`` in its own process group; wall time from launch to exit, CPU time, memory.

    ``timeout`` (s) and ``memory_cap`` (bytes of the whole tree) stop the run; the result then
    says which cap was hit (``status``) instead of a time."""
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    load = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    with open(log_path, "wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd, start_new_session=True)
    sampler = TreeSampler(p.pid)
    status = None
    try:
        while True:
            pid, code, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            current = sampler.sample()
            elapsed = time.perf_counter() - t0
            if status is None and timeout is not None and elapsed > timeout:
                status = "time cap"
                _kill_group(p.pid)
            elif status is None and memory_cap is not None and current > memory_cap:
                status = "memory cap"
                _kill_group(p.pid)
            time.sleep(poll)
    except BaseException:
        _kill_group(p.pid)
        sampler.stop_leftovers()
        os.waitpid(p.pid, 0)
        p.returncode = -1
        raise
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(code)
    p.returncode = rc
    _kill_group(p.pid)  # nothing of the run may outlive it (e.g. an orphaned Python worker)
    leftovers = sampler.stop_leftovers()
    rep = sampler.report()
    # wait4 counts the CPU of every reaped descendant; a worker orphaned at shutdown is only in
    # the sampled per-process figures (read up to the last poll): the larger of the two is used
    cpu = max(ru.ru_utime + ru.ru_stime, rep.pop("cpu_s_sampled"))
    res = {"status": status or ("ok" if rc == 0 else "failed"), "returncode": rc,
           "wall_s": round(wall, 3), "cpu_s": round(cpu, 2),
           "cpu_cores_used": round(cpu / wall, 2) if wall > 0 else None,
           # the kernel's peak of the tree; it also counts the pages the first child held between
           # fork and exec (a copy of this harness), so it is a check, not the figure reported
           **rep, "peak_rss_wait4_mb": round(ru.ru_maxrss / 1024, 1),
           "load_before": load, "log": log_path, "command": " ".join(cmd)}
    if leftovers:
        res["stopped_leftover_processes"] = len(leftovers)
    if res["status"] == "failed":
        res["error"] = last_error(log_path)
    return res


def last_error(log_path: str) -> str | None:
    """The job's one-line ``error: ...`` or the last exception line of a log."""
    try:
        with open(log_path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[7:][:500]
    for line in reversed(lines):
        if re.search(r"(Error|Exception)\b", line):
            return line.strip()[:500]
    return lines[-1][:500] if lines else None


# -- commands --------------------------------------------------------------------------------

def spark_submit_path() -> str:
    """The spark-submit that comes with the installed pyspark package."""
    import pyspark

    return os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")


def spark_submit_cmd(script: str, args: list, master: str, conf: dict | None = None) -> list[str]:
    cmd = [spark_submit_path(), "--master", master]
    for k, v in {"spark.ui.enabled": "false", "spark.pyspark.python": sys.executable,
                 "spark.pyspark.driver.python": sys.executable, **(conf or {})}.items():
        cmd += ["--conf", f"{k}={v}"]
    return cmd + [script, *map(str, args)]


def run_env() -> dict:
    from .session import SPARK_CONF_DIR

    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env.setdefault("SPARK_CONF_DIR", SPARK_CONF_DIR)  # Spark's own logging at WARN
    return env


def master_cores(master: str) -> int:
    m = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]", master.strip())
    if master.strip() == "local":
        return 1
    if not m:
        raise ConfigError(f"master {master!r}: the benchmark runs on one machine; use local[N] or local[*]")
    return (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1))


# -- outputs -----------------------------------------------------------------------------------

def parquet_rows(path: str) -> int:
    """Rows of a Parquet data set, from the file footers only."""
    import pyarrow.dataset as ds

    return int(ds.dataset(path, format="parquet").count_rows())


def dir_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


# -- the imbalanced-learn baseline (run as `python -m imbal_spark.bench baseline`) ------------------

def baseline_main(argv=None) -> int:
    """imbalanced-learn's SMOTE end to end on one process: read Parquet (pyarrow), fit_resample,
    write Parquet (pyarrow). The lean path: columns go straight to one float64 matrix."""
    t0 = time.perf_counter()
    ap = argparse.ArgumentParser(prog="python -m imbal_spark.bench baseline")
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--label-col", default="label")
    ap.add_argument("--id-cols", default="")
    ap.add_argument("--k-neighbors", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args(argv)
    import pyarrow as pa
    import pyarrow.parquet as pq
    from imblearn.over_sampling import SMOTE

    steps = {"start and imports": time.perf_counter() - t0}
    t = time.perf_counter()
    table = pq.read_table(a.input)
    skip = {a.label_col, "is_synthetic", *[c for c in a.id_cols.split(",") if c]}
    feats = [f.name for f in table.schema if f.name not in skip
             and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))]
    X = np.empty((table.num_rows, len(feats)), dtype=np.float64)
    for j, c in enumerate(feats):
        X[:, j] = table.column(c).to_numpy()
    y = table.column(a.label_col).to_numpy()
    del table
    steps["read"] = time.perf_counter() - t
    t = time.perf_counter()
    X_res, y_res = SMOTE(k_neighbors=a.k_neighbors, random_state=a.seed).fit_resample(X, y)
    steps["fit_resample"] = time.perf_counter() - t
    t = time.perf_counter()
    n = len(y)
    del X
    cols = {c: pa.array(np.ascontiguousarray(X_res[:, j])) for j, c in enumerate(feats)}
    cols[a.label_col] = pa.array(y_res)
    cols["is_synthetic"] = pa.array(np.arange(len(y_res)) >= n)
    os.makedirs(os.path.join(a.output, "data"), exist_ok=True)
    pq.write_table(pa.table(cols), os.path.join(a.output, "data", "part-00000.parquet"))
    steps["write"] = time.perf_counter() - t
    u, c = np.unique(y, return_counts=True)
    u2, c2 = np.unique(y_res, return_counts=True)
    try:
        from threadpoolctl import threadpool_info

        threads = [{k: i.get(k) for k in ("user_api", "internal_api", "num_threads")} for i in threadpool_info()]
    except Exception:  # pragma: no cover - informative only
        threads = []
    summary = {"method": "imblearn.over_sampling.SMOTE", "k_neighbors": a.k_neighbors, "random_state": a.seed,
               "features": feats, "counts_before": {str(k): int(v) for k, v in zip(u, c)},
               "counts_after": {str(k): int(v) for k, v in zip(u2, c2)},
               "timings": {k: round(v, 3) for k, v in steps.items()}, "threadpools": threads}
    with open(os.path.join(a.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return 0


# -- Spark-side pieces (data, floor, quality) ---------------------------------------------------

def holdout_frame(spark, rows: int, n_features: int = 20, informative: int = 2, weights=None,
                  classes: int = 2, seed: int = 42):
    """A test set from the generator's distribution (same seed: same class centroids, mixing and
    redundant features as every training set) whose rows come from random streams no training
    set uses (blocks numbered from :data:`HOLDOUT_FIRST_BLOCK`), with exact class counts."""
    from . import datagen

    weights = datagen.check_params(rows, n_features, informative, weights, classes)
    bounds = datagen.class_boundaries(rows, weights)
    mult = datagen._multiplier(rows, seed)
    offset = (seed * 7919) % rows
    verts, mixing = datagen._centroids(seed, classes, informative)
    n_red = min(informative, n_features - informative) // 2 * 2 if n_features > informative else 0
    red_w = np.random.default_rng([seed, 2**31 - 2]).normal(size=(informative, n_red))
    kw = dict(rows=rows, seed=seed, n_features=n_features, informative=informative, bounds=bounds,
              mult=mult, offset=offset, verts=verts, mixing=mixing, redundant_weights=red_w)
    B = datagen.BLOCK_ROWS
    first = HOLDOUT_FIRST_BLOCK * B
    n_blocks = math.ceil(rows / B)

    def gen(batches):
        for pdf in batches:
            for b in pdf["id"].tolist():
                start = first + b * B
                yield datagen.generate_block(HOLDOUT_FIRST_BLOCK + b, start, min(start + B, first + rows), **kw)

    parts = max(1, min(n_blocks, spark.sparkContext.defaultParallelism))
    return spark.range(0, n_blocks, 1, numPartitions=parts).mapInPandas(gen, datagen.schema(n_features))


def numeric_features(df, label_col: str, id_cols=()) -> list[str]:
    skip = {label_col, "is_synthetic", *id_cols}
    num = ("tinyint", "smallint", "int", "bigint", "float", "double")
    return [c for c, t in df.dtypes if c not in skip and (t in num or t.startswith("decimal"))]


def floor_frame(df, label_col: str, id_cols=(), seed: int = 42):
    """The I/O floor: an output with the rows SMOTE ('auto') would write, made with no
    resampling work. Returns ``(frame, {label: count})``.

    It counts the classes (one aggregation of the label column), then writes the input rows
    (``is_synthetic`` false) and, for every class below the majority, ``add // n`` copies of each
    of its rows -- and, when ``add`` is not a multiple of ``n``, a random ``add % n / n`` share
    of its rows once more -- with every feature multiplied by ``1 + 1e-9 * u`` (``u`` =
    ``rand(seed)``, one per new row) so that the new values are as incompressible as SMOTE's
    new points; other columns of a new row are null, ``is_synthetic`` true, as in SMOTE's output.
    """
    from pyspark.sql import functions as F

    counts = {r[0]: int(r[1]) for r in df.groupBy(label_col).count().collect()}  # one row per class
    feats = numeric_features(df, label_col, id_cols)
    n_max = max(counts.values()) if counts else 0
    base = df.withColumn("is_synthetic", F.lit(False))
    out = base
    for c, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
        add = n_max - n
        if add <= 0:
            continue
        q, r = divmod(add, n)
        rows = base.where(F.col(label_col) == F.lit(c))
        copies = []
        if q:
            copies.append(rows.withColumn("_copy", F.explode(F.sequence(F.lit(1), F.lit(q)))).drop("_copy"))
        if r:
            copies.append(rows.where(F.rand(seed + 1) < F.lit(r / n)))
        for extra in copies:
            u = F.lit(1.0) + F.lit(1e-9) * F.rand(seed)
            cols = []
            for f in base.schema.fields:
                if f.name in feats:
                    cols.append((F.col(f.name) * u).cast(f.dataType).alias(f.name))
                elif f.name == "is_synthetic":
                    cols.append(F.lit(True).alias(f.name))
                elif f.name == label_col:
                    cols.append(F.col(f.name))
                else:
                    cols.append(F.lit(None).cast(f.dataType).alias(f.name))
            out = out.unionByName(extra.select(*cols))
    return out, counts


def quality(spark, train_path: str, test, label_col: str, features: list[str], pos_label,
            max_train_rows: int, seed: int = 42) -> dict:
    """Train MLlib logistic regression on one (resampled) training set and score ``test``.

    scikit-learn's default model mapped exactly (REFERENCE.md): L2, ``C=1``, so
    ``regParam = 1 / n_train``, ``elasticNetParam=0``, ``standardization=False``, maxIter 1000.
    A training set above ``max_train_rows`` rows is a seeded Bernoulli sample of that size (the
    same fraction for every method at a size, as their outputs have the same row count)."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from .metrics import evaluate

    t0 = time.perf_counter()
    n_all = parquet_rows(train_path)
    df = spark.read.parquet(train_path).select(*features, label_col)
    fraction = 1.0
    if max_train_rows and n_all > max_train_rows:
        fraction = max_train_rows / n_all
        df = df.sample(withReplacement=False, fraction=fraction, seed=seed)
    va = VectorAssembler(inputCols=features, outputCol="_f", handleInvalid="error")
    train = va.transform(df).select("_f", F.col(label_col).cast("double").alias("_y")).cache()
    try:
        counts = {r[0]: int(r[1]) for r in train.groupBy("_y").count().collect()}
        n = sum(counts.values())
        pos = float(pos_label)
        lr = LogisticRegression(featuresCol="_f", labelCol="_y", regParam=1.0 / n, elasticNetParam=0.0,
                                standardization=False, maxIter=1000, tol=1e-6)
        model = lr.fit(train)
        iters = int(model.summary.totalIterations)
    finally:
        train.unpersist()
    pred = (model.transform(va.transform(test))
            .select(F.col(label_col), F.col("prediction").cast(test.schema[label_col].dataType).alias("_pred"),
                    vector_to_array("probability")[int(pos)].alias("_score")))
    ev = evaluate(pred, label_col, "_pred", "_score", pos_label=pos_label)
    pc = ev["per_class"][pos_label]
    return {"train_rows": n, "train_rows_available": n_all, "train_fraction": round(fraction, 6),
            "train_counts": {str(int(k)): v for k, v in counts.items()},
            "roc_auc": ev["binary"]["roc_auc"], "pr_auc": ev["binary"]["average_precision"],
            "minority_f1": pc["f1"], "minority_recall": pc["recall"], "minority_precision": pc["precision"],
            "accuracy": ev["accuracy"], "lr_iterations": iters, "seconds": round(time.perf_counter() - t0, 2)}


# -- machine ---------------------------------------------------------------------------------

def machine_info() -> dict:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for mod in ("pyspark", "numpy", "pandas", "pyarrow", "sklearn", "imblearn"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - informative only
            versions[mod] = None
    try:
        from .session import java_version

        versions["java"] = java_version()
    except Exception:  # pragma: no cover
        versions["java"] = None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "os": platform.platform(), "python": platform.python_version(), "versions": versions,
            "load_average_at_start": [round(x, 2) for x in load] if load else None}


# -- targets and the Markdown table --------------------------------------------------------------

@dataclasses.dataclass
class Target:
    name: str
    figure: object
    limit: str
    met: bool | None
    note: str = ""


def _ok(run) -> bool:
    return bool(run) and run.get("status") == "ok"


def evaluate_targets(results: dict) -> list[dict]:
    """The issue's targets, each with the measured figure and whether it is met (None: not
    measured in this run). Thresholds are the issue's; nothing is tuned to them."""
    by_size = {s["rows"]: s for s in results["sizes"]}
    out: list[Target] = []
    scale = results.get("scaling") or {}
    ref = scale.get("rows") or (3_000_000 if 3_000_000 in by_size else None)
    s = by_size.get(ref) if ref else None
    sp = s and s.get("ratios", {}).get("speedup_vs_imblearn")
    out.append(Target(f"imbal-spark >= 4x faster than imbalanced-learn at {human(ref) if ref else '3M'} rows",
                      sp, ">= 4", None if sp is None else sp >= 4,
                      "" if sp is not None else "imbalanced-learn or imbal-spark did not complete at this size"))
    for rows, s in by_size.items():
        if rows < 1_000_000:
            continue
        r = s.get("ratios", {}).get("imbal_spark_over_floor")
        out.append(Target(f"imbal-spark / floor at {human(rows)} rows", r, "<= 2", None if r is None else r <= 2))
    for rows, s in by_size.items():
        q = s.get("quality") or {}
        d = q.get("delta_vs_imblearn")
        if d:
            a, f = d.get("roc_auc"), d.get("minority_f1")
            out.append(Target(f"ROC AUC gap to imbalanced-learn at {human(rows)}", a, "abs <= 0.005",
                              None if a is None else abs(a) <= 0.005))
            out.append(Target(f"minority F1 gap to imbalanced-learn at {human(rows)}", f, "abs <= 0.01",
                              None if f is None else abs(f) <= 0.01))
        nr = (s.get("imbal_spark") or {}).get("neighbour_recall")
        if nr is not None:
            out.append(Target(f"neighbour recall@k at {human(rows)}", nr, ">= 0.9", nr >= 0.9))
    big = max(by_size) if by_size else None
    if big and big >= 10_000_000:
        s = by_size[big]
        out.append(Target(f"{human(big)} rows complete", _ok(s.get("imbal_spark")), "completes",
                          _ok(s.get("imbal_spark"))))
    if big and 1_000_000 in by_size and big > 1_000_000:
        a, b = by_size[1_000_000].get("imbal_spark"), by_size[big].get("imbal_spark")
        limit = 1.2 * big / 1_000_000
        if _ok(a) and _ok(b):
            g = round(b["wall_s"] / a["wall_s"], 2)
            out.append(Target(f"time {human(big)} / time 1M", g, f"<= {limit:g}", g <= limit))
            fa, fb = by_size[1_000_000].get("floor"), by_size[big].get("floor")
            for role in ("jvm", "python_driver", "python_workers"):
                ma, mb = a["memory"].get(role), b["memory"].get(role)
                if ma and mb:
                    gr = round(mb["peak_rss_mb"] / ma["peak_rss_mb"], 2)
                    detail = f"{ma['peak_rss_mb']:.0f} MB -> {mb['peak_rss_mb']:.0f} MB"
                    if ma.get("peak_anon_mb") and mb.get("peak_anon_mb"):  # without shared-library pages
                        detail += (f"; anonymous {ma['peak_anon_mb']:.0f} MB -> {mb['peak_anon_mb']:.0f} MB "
                                   f"({mb['peak_anon_mb'] / ma['peak_anon_mb']:.2f})")
                    # the floor's JVM over the same sizes: how much of the growth is Spark's own I/O
                    fma = (fa or {}).get("memory", {}).get(role) if _ok(fa) else None
                    fmb = (fb or {}).get("memory", {}).get(role) if _ok(fb) else None
                    if role == "jvm" and fma and fmb:
                        detail += f"; the floor's: {fma['peak_rss_mb']:.0f} MB -> {fmb['peak_rss_mb']:.0f} MB"
                    out.append(Target(f"peak RSS of one {ROLE_NAMES[role]} process, {human(big)} / 1M", gr,
                                      "<= 1.25 (does not grow with rows)", gr <= 1.25, detail))
    sc = scale.get("speedup")
    if scale:
        out.append(Target(f"{scale.get('faster')} vs {scale.get('slower')} at {human(scale['rows'])} rows",
                          sc, ">= 1.7", None if sc is None else sc >= 1.7))
    return [dataclasses.asdict(t) for t in out]


def _f(v, fmt="{:.1f}", none="–"):
    if v is None:
        return none
    try:
        return fmt.format(v)
    except (TypeError, ValueError):
        return str(v)


def _run_cell(run, what="wall_s") -> str:
    if not run:
        return "–"
    if run.get("status") == "ok":
        return _f(run.get(what))
    return run.get("status", "–")


def render_markdown(results: dict) -> str:
    m = results["machine"]
    lines = ["## Benchmark: partitioned SMOTE vs imbalanced-learn vs the Spark I/O floor", "",
             f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, Python {m['python']}, "
             f"Spark {m['versions'].get('pyspark')}, imbalanced-learn {m['versions'].get('imblearn')}, "
             f"Java {m['versions'].get('java')}; load average at start {m.get('load_average_at_start')}. "
             f"Run {results.get('started', '')}, {results.get('duration_s', 0) / 60:.1f} min in all.", "",
             f"Data: {results['data']['n_features']} numeric features, class weights "
             f"{results['data']['weights']}, balanced to 1:1 by SMOTE (k={results['config']['k_neighbors']}); "
             f"Spark runs use `{results['config']['master']}` ({master_cores(results['config']['master'])} cores), "
             f"`spark-submit` with {results['config'].get('spark') or {}}.", "",
             "| rows | imbal-spark s | rows out/s | floor s | imbalanced-learn s | speed-up vs imblearn "
             "| imbal-spark / floor | peak MB: JVM / Py driver / Py worker (all workers) | anonymous MB: JVM / Py "
             "driver / Py worker | imblearn peak MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for s in results["sizes"]:
        sm, fl, bl = s.get("imbal_spark") or {}, s.get("floor") or {}, s.get("imblearn") or {}
        r = s.get("ratios", {})
        mem = sm.get("memory", {}) if _ok(sm) else {}

        def pk(role, key="peak_rss_mb"):
            return _f((mem.get(role) or {}).get(key), "{:.0f}")

        memcell = (f"{pk('jvm')} / {pk('python_driver')} / {pk('python_workers')} ({pk('python_workers', 'peak_sum_mb')})"
                   if mem else "–")
        anoncell = f"{pk('jvm', 'peak_anon_mb')} / {pk('python_driver', 'peak_anon_mb')} / " \
                   f"{pk('python_workers', 'peak_anon_mb')}" if mem else "–"
        lines.append(
            f"| {human(s['rows'])} | {_run_cell(sm)} | {_f(sm.get('rows_per_s') if _ok(sm) else None, '{:,.0f}')} "
            f"| {_run_cell(fl)} | {_run_cell(bl) if not bl.get('skipped') else 'skipped'} "
            f"| {_f(r.get('speedup_vs_imblearn'), '{:.2f}x')} | {_f(r.get('imbal_spark_over_floor'), '{:.2f}')} "
            f"| {memcell} | {anoncell} | {_f(bl.get('peak_process_rss_mb') if _ok(bl) else None, '{:.0f}')} |")
    lines += ["", "Quality: MLlib logistic regression (scikit-learn's default L2, C=1) trained on each resampled "
              "training set, scored on the same held-out test rows.", "",
              "| rows | method | train rows | ROC AUC | PR AUC | minority F1 | minority recall | neighbour recall@k |",
              "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for s in results["sizes"]:
        q = s.get("quality") or {}
        for key, name in (("imbal_spark", "imbal-spark"), ("imblearn", "imbalanced-learn")):
            v = q.get(key)
            if not v:
                continue
            nr = (s.get("imbal_spark") or {}).get("neighbour_recall") if key == "imbal_spark" else None
            lines.append(f"| {human(s['rows'])} | {name} | {v['train_rows']:,} | {_f(v['roc_auc'], '{:.4f}')} "
                         f"| {_f(v['pr_auc'], '{:.4f}')} | {_f(v['minority_f1'], '{:.4f}')} "
                         f"| {_f(v['minority_recall'], '{:.4f}')} | {_f(nr, '{:.3f}', '')} |")
    sc = results.get("scaling")
    if sc:
        runs = sc.get("runs", {})
        cells = ", ".join(f"`{k}` {_run_cell(v)} s" for k, v in runs.items())
        lines += ["", f"Cores: imbal-spark SMOTE at {human(sc['rows'])} rows: {cells}; speed-up "
                  f"{_f(sc.get('speedup'), '{:.2f}x')}."]
    lines += ["", "| target | figure | limit | met |", "|---|---:|---|---|"]
    for t in results.get("targets", []):
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        fig = t["figure"]
        fig = _f(fig, "{:.4g}") if isinstance(fig, float) else fig
        lines.append(f"| {t['name']} | {fig} | {t['limit']} | {met}{(' (' + t['note'] + ')') if t['note'] else ''} |")
    if results.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in results["notes"]]
    d = results.get("definitions", {})
    if d:
        lines += ["", "How each figure is measured:", ""] + [f"- **{k}**: {v}" for k, v in d.items()]
    return "\n".join(lines) + "\n"



# -- profiling: Spark stage timings from an event log --------------------------------------------

def _event_lines(path: str):
    """Lines of an event log: one file, or a rolling log directory (``eventlog_v2_*``)."""
    if os.path.isdir(path):
        def part(name):
            m = re.match(r"events_(\d+)_", name)
            return int(m.group(1)) if m else -1
        files = sorted((f for f in os.listdir(path) if f.startswith("events_")), key=part)
        files = [os.path.join(path, f) for f in files]
    else:
        files = [path]
    for fp in files:
        with open(fp) as f:
            yield from f


def stage_report(event_log: str) -> dict:
    """Stage timings and task metrics from a Spark event log (``spark.eventLog.enabled=true``,
    uncompressed), with the job description each stage ran under (imbal-spark names its steps
    with ``setJobDescription``). Python time is not in Spark's task metrics: a stage's
    ``task_s - jvm_cpu_s`` is mostly time in (or waiting on) Python workers and I/O."""
    jobs, stage_job, stages = {}, {}, {}
    agg = defaultdict(lambda: defaultdict(float))
    app = {}
    for line in _event_lines(event_log):
        e = json.loads(line)
        ev = e.get("Event")
        if ev == "SparkListenerApplicationStart":
            app["start"] = e["Timestamp"]
        elif ev == "SparkListenerApplicationEnd":
            app["end"] = e["Timestamp"]
        elif ev == "SparkListenerJobStart":
            desc = (e.get("Properties") or {}).get("spark.job.description") or ""
            jobs[e["Job ID"]] = {"job": e["Job ID"], "description": desc, "start": e["Submission Time"]}
            for sid in e.get("Stage IDs", []):
                stage_job[sid] = e["Job ID"]
        elif ev == "SparkListenerJobEnd" and e["Job ID"] in jobs:
            jobs[e["Job ID"]]["end"] = e["Completion Time"]
        elif ev == "SparkListenerStageCompleted":
            si = e["Stage Info"]
            stages[(si["Stage ID"], si["Stage Attempt ID"])] = {
                "stage": si["Stage ID"], "name": si["Stage Name"], "tasks": si["Number of Tasks"],
                "start": si.get("Submission Time"), "end": si.get("Completion Time")}
        elif ev == "SparkListenerTaskEnd":
            m = e.get("Task Metrics") or {}
            a = agg[(e["Stage ID"], e["Stage Attempt ID"])]
            a["task_s"] += m.get("Executor Run Time", 0) / 1e3
            a["jvm_cpu_s"] += m.get("Executor CPU Time", 0) / 1e9
            a["gc_s"] += m.get("JVM GC Time", 0) / 1e3
            a["input_mb"] += (m.get("Input Metrics") or {}).get("Bytes Read", 0) / MB
            a["output_mb"] += (m.get("Output Metrics") or {}).get("Bytes Written", 0) / MB
            a["output_rows"] += (m.get("Output Metrics") or {}).get("Records Written", 0)
            sr = m.get("Shuffle Read Metrics") or {}
            a["shuffle_read_mb"] += (sr.get("Remote Bytes Read", 0) + sr.get("Local Bytes Read", 0)) / MB
            a["shuffle_write_mb"] += (m.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0) / MB
            a["spill_mb"] += m.get("Disk Bytes Spilled", 0) / MB
            a["max_task_s"] = max(a["max_task_s"], m.get("Executor Run Time", 0) / 1e3)
    out_stages = []
    for key, st in sorted(stages.items(), key=lambda kv: kv[1]["start"] or 0):
        j = jobs.get(stage_job.get(st["stage"]), {})
        st = {**st, "job": j.get("job"), "description": j.get("description", ""),
              "wall_s": round(((st["end"] or 0) - (st["start"] or 0)) / 1e3, 3),
              **{k: round(v, 3) for k, v in agg[key].items()}}
        out_stages.append(st)
    t0 = app.get("start") or min((j["start"] for j in jobs.values()), default=0)
    for st in out_stages:
        st["at_s"] = round(((st.pop("start") or t0) - t0) / 1e3, 2)
        st.pop("end", None)
    jl = [{**j, "at_s": round((j["start"] - t0) / 1e3, 2),
           "wall_s": round((j.get("end", j["start"]) - j["start"]) / 1e3, 3)} for j in jobs.values()]
    for j in jl:
        j.pop("start", None)
        j.pop("end", None)
    return {"app_s": round(((app.get("end") or 0) - (app.get("start") or 0)) / 1e3, 2) if app.get("end") else None,
            "jobs": jl, "stages": out_stages}


def format_stage_report(rep: dict) -> str:
    lines = [f"application {rep.get('app_s')} s (from SparkContext start to stop)",
             "| at s | stage | tasks | wall s | task s | JVM CPU s | max task s | in MB | shuffle w/r MB "
             "| out MB | job description: stage name |", "|" + "---:|" * 10 + "---|"]
    for s in rep["stages"]:
        lines.append(f"| {s['at_s']} | {s['stage']} | {s['tasks']} | {s['wall_s']:.2f} | {s.get('task_s', 0):.1f} "
                     f"| {s.get('jvm_cpu_s', 0):.1f} | {s.get('max_task_s', 0):.1f} | {s.get('input_mb', 0):.0f} "
                     f"| {s.get('shuffle_write_mb', 0):.0f}/{s.get('shuffle_read_mb', 0):.0f} "
                     f"| {s.get('output_mb', 0):.0f} | {s['description'] or '-'}: {s['name'][:60]} |")
    return "\n".join(lines)


# -- the whole benchmark ---------------------------------------------------------------------------

DEFINITIONS = {
    "wall time": "from launching the process (spark-submit or python) to its exit: JVM or interpreter "
                 "start-up, imports, reading the input Parquet, the work, writing the output Parquet",
    "rows out/s": "rows written (counted from the output's Parquet footers) / wall time",
    "imbal-spark": "`spark-submit jobs/resample.py --method smote` (read Parquet -> SMOTE -> write Parquet "
                   "+ summary.json), one JVM per run",
    "imbalanced-learn": "`python -m imbal_spark.bench baseline`: pyarrow read -> "
                        "`imblearn.over_sampling.SMOTE(k_neighbors=k, random_state=seed).fit_resample` "
                        "-> pyarrow write, one interpreter per run, its default thread pools (all cores)",
    "floor": "`spark-submit jobs/benchmark.py floor`: counts the classes (one aggregation of the label), "
             "then writes the input rows plus, per minority class, copies of its rows up to the majority "
             "count (each copy's features x (1 + 1e-9 rand()), so new values are as incompressible as "
             "SMOTE's; other columns null) -- the same rows and columns as SMOTE's output with no "
             "neighbour search or interpolation; same master and Spark settings as imbal-spark",
    "peak memory": "polled every 0.2 s from /proc over the run's process tree; per role the largest peak "
                   "RSS (VmHWM) of one process; 'all workers' is the largest sum over concurrent Python "
                   "workers (PSS, so pages shared with pyspark.daemon are split, not double counted); "
                   "'anonymous' is the largest RssAnon of one process at a poll: the process's own memory "
                   "without the pages of shared libraries mapped from files, whose resident share depends "
                   "on the page cache (a spike between two polls can be missed, unlike VmHWM's)",
    "quality": "MLlib LogisticRegression with scikit-learn's defaults mapped exactly (L2, C=1: "
               "regParam = 1/n, no standardization, maxIter 1000) trained on each resampled output "
               "(a seeded sample of quality_train_rows rows when larger, the same fraction for both "
               "methods), scored on one held-out test set from the same generator (independent random "
               "streams); minority F1/recall at the 0.5 probability threshold; ROC AUC and PR AUC "
               "(average precision) exact, from imbal_spark.metrics",
    "neighbour recall@k": "from imbal-spark's summary.json: share of a sampled row's exact k nearest "
                          "neighbours (whole class) that lie in its SMOTE group (lowest over classes)",
}


class Benchmark:
    """Runs every measured process of the benchmark; :meth:`measure_quality` and
    :meth:`finish` then need a SparkSession (started by the job once no run is being timed)."""

    def __init__(self, cfg: dict, jobs_dir: str):
        self.cfg = cfg
        self.sizes = parse_sizes(cfg["sizes"])
        self.scaling_rows = int(cfg.get("scaling_rows") or 0)
        self.scaling_masters = list(cfg.get("scaling_masters") or [])
        if self.scaling_rows and len(self.scaling_masters) < 2:
            raise ConfigError("scaling_masters needs two Spark masters to compare, e.g. local[1],local[2]; "
                              "or set scaling_rows to 0 to skip the comparison")
        self.master = cfg["master"]
        for m in [self.master, *self.scaling_masters]:
            master_cores(m)
        self.work = os.path.abspath(cfg["work_dir"])
        self.jobs = os.path.abspath(jobs_dir)
        self.label = cfg["label_col"]
        self.seed = int(cfg["seed"])
        self.k = int(cfg["k_neighbors"])
        self.conf = {str(k): str(v) for k, v in (cfg.get("spark") or {}).items()}
        self.env = run_env()
        self.results = {
            "benchmark": "imbal-spark partitioned SMOTE vs imbalanced-learn SMOTE vs the Spark I/O floor",
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine_info(),
            "config": {k: cfg.get(k) for k in (
                "sizes", "test_rows", "n_features", "informative", "weights", "seed", "k_neighbors",
                "max_group_rows", "halo", "probe", "master", "spark", "baseline_time_cap", "baseline_memory_cap",
                "scaling_rows", "scaling_masters", "quality_train_rows")},
            "data": {"n_features": cfg["n_features"], "informative": cfg["informative"],
                     "weights": cfg["weights"], "seed": self.seed, "test_rows": cfg["test_rows"]},
            "definitions": DEFINITIONS, "sizes": [], "notes": []}
        self.results["config"]["sizes"] = self.sizes
        self._t0 = time.perf_counter()

    # paths
    def data(self, rows):
        return os.path.join(self.work, "data", f"train-{rows}")

    def test_path(self):
        return os.path.join(self.work, "data", f"test-{self.cfg['test_rows']}")

    def run_dir(self, name):
        return os.path.join(self.work, "runs", name)

    def log(self, name):
        return os.path.join(self.work, "logs", f"{name}.log")

    def _save_partial(self):
        os.makedirs(self.work, exist_ok=True)
        with open(os.path.join(self.work, "results.partial.json"), "w") as f:
            json.dump(self.results, f, indent=2, default=str)

    # steps
    def run(self) -> dict:
        self.prepare()
        for rows in self.sizes:
            self.run_size(rows)
        if self.scaling_rows:
            self.run_scaling()
        return self.results

    def prepare(self):
        rows = sorted(set(self.sizes) | ({self.scaling_rows} if self.scaling_rows else set()))
        c = self.cfg
        args = ["prepare", "--work-dir", self.work, "--sizes", ",".join(map(str, rows)),
                "--test-rows", c["test_rows"], "--n-features", c["n_features"], "--informative", c["informative"],
                "--weights", ",".join(map(str, c["weights"])), "--seed", self.seed]
        log.info("preparing data: %s rows + %s test rows (reused when already there)",
                 ", ".join(map(human, rows)), f"{c['test_rows']:,}")
        r = run_measured(spark_submit_cmd(os.path.join(self.jobs, "benchmark.py"), args, self.master, self.conf),
                         log_path=self.log("prepare"), env=self.env, timeout=SPARK_RUN_TIMEOUT_S)
        self.results["data"]["prepare"] = {k: r.get(k) for k in ("status", "wall_s", "log", "error")}
        if r["status"] != "ok":
            raise ConfigError(f"preparing the benchmark data failed ({r['status']}): {r.get('error')}; see {r['log']}")
        self.results["data"]["input_bytes"] = {str(n): dir_bytes(self.data(n)) for n in rows}

    def _spark_run(self, name, script, args, master, out_dir) -> dict:
        r = run_measured(spark_submit_cmd(script, args, master, self.conf), log_path=self.log(name),
                         env=self.env, timeout=SPARK_RUN_TIMEOUT_S)
        r["master"] = master
        if r["status"] == "ok":
            data = os.path.join(out_dir, "data")
            r["rows_written"] = parquet_rows(data)
            r["bytes_written"] = dir_bytes(data)
            r["rows_per_s"] = round(r["rows_written"] / r["wall_s"], 1)
        return r

    def smote(self, rows, name, master) -> dict:
        out = self.run_dir(name)
        args = ["--input", self.data(rows), "--output", out, "--label-col", self.label, "--method", "smote",
                "--k-neighbors", self.k, "--seed", self.seed, "--max-group-rows", self.cfg["max_group_rows"],
                "--halo", self.cfg.get("halo", 0.6), "--probe", self.cfg.get("probe", 0.15),
                "--id-cols", "id", "--mode", "overwrite"]
        r = self._spark_run(name, os.path.join(self.jobs, "resample.py"), args, master, out)
        if r["status"] == "ok":
            try:
                summ = read_json(os.path.join(out, "summary.json"))
            except (OSError, ValueError) as e:
                summ = {"error": f"no readable summary.json: {e}"}
            r["summary"] = {k: summ.get(k) for k in ("counts_before", "counts_after", "groups",
                                                     "neighbour_recall", "timings", "error") if k in summ}
            recalls = [v.get("recall_at_k") for v in (summ.get("neighbour_recall") or {}).values()
                       if isinstance(v, dict) and v.get("recall_at_k") is not None]
            r["neighbour_recall"] = min(recalls) if recalls else None
        log.info("[%s] imbal-spark SMOTE (%s): %s", human(rows), master, _brief(r))
        return r

    def floor(self, rows) -> dict:
        out = self.run_dir(f"{rows}-floor")
        args = ["floor", "--input", self.data(rows), "--output", out, "--label-col", self.label,
                "--id-cols", "id", "--seed", self.seed, "--mode", "overwrite"]
        r = self._spark_run(f"{rows}-floor", os.path.join(self.jobs, "benchmark.py"), args, self.master, out)
        _rmtree(out)  # measured; nothing else reads it
        log.info("[%s] floor: %s", human(rows), _brief(r))
        return r

    def baseline(self, rows, previous) -> dict:
        cap_s = float(self.cfg.get("baseline_time_cap") or 0) or None
        cap_gib = float(self.cfg.get("baseline_memory_cap") or 0) or None
        if previous is not None:
            prows, prun = previous
            f = rows / prows
            if prun.get("status") in ("time cap", "memory cap") or prun.get("skipped"):
                return {"status": "skipped", "skipped": True,
                        "reason": f"skipped: the {human(prows)}-row run already exceeded a cap"}
            if _ok(prun):
                fit = (prun.get("summary") or {}).get("timings", {}).get("fit_resample", 0.0)
                # brute-force k-NN within the class grows with rows^2; reading, writing, start-up linearly
                pred_s = (prun["wall_s"] - fit) * f + fit * f * f
                pred_gib = prun["peak_tree_mb"] * f / 1024
                if cap_s and pred_s > cap_s:
                    return {"status": "skipped", "skipped": True, "predicted_s": round(pred_s),
                            "reason": (f"skipped: predicted ~{pred_s:,.0f} s (the {human(prows)}-row run: "
                                       f"fit_resample x {f:.3g}^2, the rest x {f:.3g}) > baseline_time_cap "
                                       f"{cap_s:g} s")}
                if cap_gib and pred_gib > cap_gib:
                    return {"status": "skipped", "skipped": True, "predicted_gib": round(pred_gib, 1),
                            "reason": f"skipped: predicted ~{pred_gib:.1f} GiB > baseline_memory_cap {cap_gib:g} GiB"}
        out = self.run_dir(f"{rows}-imblearn")
        _rmtree(out)
        cmd = [sys.executable, "-m", "imbal_spark.bench", "baseline", "--input", self.data(rows), "--output", out,
               "--label-col", self.label, "--id-cols", "id", "--k-neighbors", str(self.k), "--seed", str(self.seed)]
        r = run_measured(cmd, log_path=self.log(f"{rows}-imblearn"), env=self.env, timeout=cap_s,
                         memory_cap=cap_gib * 1024**3 if cap_gib else None)
        if r["status"] == "ok":
            data = os.path.join(out, "data")
            r["rows_written"] = parquet_rows(data)
            r["bytes_written"] = dir_bytes(data)
            r["rows_per_s"] = round(r["rows_written"] / r["wall_s"], 1)
            summ = read_json(os.path.join(out, "summary.json"))
            r["summary"] = {k: summ.get(k) for k in ("counts_before", "counts_after", "timings", "threadpools")}
        elif r["status"] in ("time cap", "memory cap"):
            cap = f"{cap_s:g} s" if r["status"] == "time cap" else f"{cap_gib:g} GiB"
            r["reason"] = f"stopped at the {r['status']} ({cap})"
            _rmtree(out)
        log.info("[%s] imbalanced-learn: %s", human(rows), _brief(r))
        return r

    def run_size(self, rows):
        s = {"rows": rows}
        self.results["sizes"].append(s)
        s["floor"] = self.floor(rows)
        self._save_partial()
        s["imbal_spark"] = self.smote(rows, f"{rows}-smote", self.master)
        self._save_partial()
        prev = next(((r["rows"], r["imblearn"]) for r in reversed(self.results["sizes"][:-1])
                     if r.get("imblearn")), None)
        s["imblearn"] = self.baseline(rows, prev)
        if s["imblearn"].get("skipped") or s["imblearn"]["status"] in ("time cap", "memory cap"):
            self.results["notes"].append(f"imbalanced-learn at {human(rows)} rows: "
                                         f"{s['imblearn'].get('reason')}")
        sm, fl, bl = s["imbal_spark"], s["floor"], s["imblearn"]
        if _ok(sm):
            s["rows_out"] = sm["rows_written"]
            if _ok(fl) and fl["rows_written"] != sm["rows_written"]:
                self.results["notes"].append(
                    f"floor at {human(rows)}: wrote {fl['rows_written']:,} rows, SMOTE {sm['rows_written']:,}")
        s["ratios"] = {
            "imbal_spark_over_imblearn": _ratio(sm, bl),
            "speedup_vs_imblearn": _ratio(bl, sm),
            "imbal_spark_over_floor": _ratio(sm, fl),
        }
        self._save_partial()

    def run_scaling(self):
        rows = self.scaling_rows
        main_cores = master_cores(self.master)
        size = next((s for s in self.results["sizes"] if s["rows"] == rows), None)
        runs = {}
        for m in self.scaling_masters:
            if size and master_cores(m) == main_cores and _ok(size.get("imbal_spark")):
                runs[m] = size["imbal_spark"]
                runs[m] = {**runs[m], "reused": f"the {human(rows)}-row run above ({self.master})"}
            else:
                name = f"{rows}-smote-{re.sub(r'[^0-9a-z]+', '', m)}"
                runs[m] = self.smote(rows, name, m)
                _rmtree(self.run_dir(name))
        sc = {"rows": rows, "runs": runs}
        done = {m: r for m, r in runs.items() if _ok(r)}
        if len(done) >= 2:
            fast = max(done, key=master_cores)
            slow = min(done, key=master_cores)
            sc.update(faster=fast, slower=slow, speedup=round(done[slow]["wall_s"] / done[fast]["wall_s"], 3))
        self.results["scaling"] = sc
        self._save_partial()

    def measure_quality(self, spark):
        """MLlib LR on every resampled output, scored on the held-out test set (see DEFINITIONS)."""
        test = spark.read.parquet(self.test_path()).cache()
        feats = numeric_features(test, self.label, ["id"])
        weights = self.results["data"]["weights"]
        pos = int(np.argmin(weights))
        cap = int(self.cfg.get("quality_train_rows") or 0)
        for s in self.results["sizes"]:
            q = {}
            for key, name in (("imbal_spark", f"{s['rows']}-smote"), ("imblearn", f"{s['rows']}-imblearn")):
                if _ok(s.get(key)):
                    try:
                        q[key] = quality(spark, os.path.join(self.run_dir(name), "data"), test, self.label,
                                         feats, pos, cap, self.seed)
                        log.info("[%s] quality of %s: ROC AUC %.4f, minority F1 %.4f", human(s["rows"]), key,
                                 q[key]["roc_auc"], q[key]["minority_f1"])
                    except Exception as e:  # a failed model is reported, the other figures stay
                        q[key] = None
                        self.results["notes"].append(f"quality of {key} at {human(s['rows'])}: {e}")
                if not self.cfg.get("keep_outputs"):
                    _rmtree(self.run_dir(name))
            if q.get("imbal_spark") and q.get("imblearn"):
                q["delta_vs_imblearn"] = {
                    m: round(q["imbal_spark"][m] - q["imblearn"][m], 6)
                    for m in ("roc_auc", "pr_auc", "minority_f1", "minority_recall")
                    if q["imbal_spark"][m] is not None and q["imblearn"][m] is not None}
            s["quality"] = q
        test.unpersist()
        self._save_partial()

    def finish(self) -> dict:
        r = self.results
        r["targets"] = evaluate_targets(r)
        r["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        r["duration_s"] = round(time.perf_counter() - self._t0, 1)
        load = (r["machine"].get("load_average_at_start") or [0])[0]
        if load > 0.5 * (r["machine"]["cores"] or 1):
            r["notes"].append(f"the machine was busy when the run started (load average {load} on "
                              f"{r['machine']['cores']} cores): wall times are inflated and noisy; "
                              f"each run's load_before is in results.json")
        self._save_partial()
        return r


def _ratio(a, b):
    if _ok(a) and _ok(b) and b["wall_s"] > 0:
        return round(a["wall_s"] / b["wall_s"], 3)
    return None


def _brief(r) -> str:
    if r.get("status") != "ok":
        return f"{r.get('status')} {r.get('reason') or r.get('error') or ''}".strip()
    return (f"{r['wall_s']:.1f} s, {r.get('rows_written', 0):,} rows, peak process "
            f"{r['peak_process_rss_mb']:.0f} MB, CPU {r['cpu_s']:.0f} s")


def _rmtree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    # `python -m imbal_spark.bench baseline ...`: the imbalanced-learn run;
    # `python -m imbal_spark.bench stages EVENT_LOG`: stage timings of a profiled Spark run
    if len(sys.argv) > 1 and sys.argv[1] == "baseline":
        sys.exit(baseline_main(sys.argv[2:]))
    if len(sys.argv) == 3 and sys.argv[1] == "stages":
        print(format_stage_report(stage_report(sys.argv[2])))
        sys.exit(0)
    print("usage: python -m imbal_spark.bench baseline --input DIR --output DIR [...]\n"
          "       python -m imbal_spark.bench stages EVENT_LOG", file=sys.stderr)
    sys.exit(2)
