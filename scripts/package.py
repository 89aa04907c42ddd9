"""Build what spark-submit ships to a cluster (``make package``).

    python scripts/package.py [--dist dist] [--python-prefix /usr]

Writes three files to ``dist/``:

* ``imbal_spark-<version>-py3-none-any.whl`` -- the package, for ``pip install`` (Docker image,
  edge nodes, the Airflow workers' submit environment);
* ``imbal_spark.zip`` -- the ``imbal_spark`` package cut from that wheel, for ``--py-files``
  (Spark puts .zip/.egg files on the Python path; it cannot import from a .whl);
* ``imbal_spark_env.tar.gz`` -- a venv-pack archive of the third-party runtime dependencies
  (numpy, pandas, pyarrow, scikit-learn, ...) for ``--archives ...#environment`` with
  ``spark.pyspark.python=./environment/bin/python``.

The environment holds the dependencies but neither pyspark nor imbal_spark: Spark puts its own
pyspark (matching the cluster's JVM side) on the executors' path, and the code travels in the
small zip, so a code change rebuilds a 30 kB zip, not a 150 MB archive. The archive's versions
are pinned to the ones installed in the environment running this script (the tested ones), so
the driver and the executors agree on pandas/pyarrow. venv-pack keeps the interpreter outside
the archive: the nodes need the same Python (3.x.y) at the same prefix, or give
``--python-prefix`` (e.g. ``/usr``) to point the archive at the nodes' interpreter.

Everything is cached under ``build/package/`` and rebuilt only when its inputs change.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import fcntl
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "imbal_spark"
ZIP_NAME = "imbal_spark.zip"
ENV_NAME = "imbal_spark_env.tar.gz"
#: Dependencies the cluster already has (Spark ships its own pyspark and py4j).
NOT_SHIPPED = {"pyspark", "py4j"}
# A fixed timestamp makes the zip byte-identical for identical sources (cacheable, diffable).
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
#: Bump when the way the environment is built changes, to invalidate cached archives.
RECIPE = 4


def log(msg: str) -> None:
    print(f"package: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw) -> None:
    log("$ " + " ".join(map(str, cmd)))
    subprocess.run(list(map(str, cmd)), check=True, **kw)


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def version() -> str:
    return setup_cfg()["metadata"]["version"].strip()


def extra_requirements(extra: str) -> list[str]:
    raw = setup_cfg()["options.extras_require"].get(extra, "")
    return [line.strip() for line in raw.splitlines() if line.strip() and not line.strip().startswith("#")]


def source_digest() -> str:
    """Hash of everything that goes into the wheel."""
    h = hashlib.sha256()
    files = [ROOT / "setup.cfg", ROOT / "pyproject.toml", ROOT / "README.md"]
    files += sorted((ROOT / PACKAGE).rglob("*.py"))
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()


def ensure_tools() -> None:
    """build and venv-pack, as pinned by setup.cfg's ``package`` extra, in this environment."""
    missing = [r for r in extra_requirements("package")
               if not _installed(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0])]
    if missing:
        run([sys.executable, "-m", "pip", "install", "-q", *missing])


def _installed(name: str) -> bool:
    try:
        md.version(name)
        return True
    except md.PackageNotFoundError:
        return False


def build_wheel(dist: Path, cache: Path) -> Path:
    digest = source_digest()
    wheel = dist / f"{PACKAGE}-{version()}-py3-none-any.whl"
    stamp = cache / "wheel.sha256"
    if wheel.exists() and stamp.exists() and stamp.read_text() == digest:
        log(f"{wheel.name} is up to date")
        return wheel
    with tempfile.TemporaryDirectory(dir=cache) as out:
        # An isolated build (fresh setuptools from the build requirements), as pip would do it.
        run([sys.executable, "-m", "build", "--wheel", "--outdir", out, str(ROOT)],
            stdout=subprocess.DEVNULL)
        built = list(Path(out).glob("*.whl"))
        if len(built) != 1:
            raise SystemExit(f"package: expected one wheel from the build, got {built}")
        dist.mkdir(parents=True, exist_ok=True)
        os.replace(built[0], wheel)
    stamp.write_text(digest)
    return wheel


def build_zip(wheel: Path, dist: Path) -> Path:
    """The package's modules taken from the wheel, so --py-files ships exactly what pip installs."""
    target = dist / ZIP_NAME
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(wheel) as whl, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        names = sorted(n for n in whl.namelist() if n.startswith(f"{PACKAGE}/"))
        if f"{PACKAGE}/__init__.py" not in names:
            raise SystemExit(f"package: {wheel.name} has no {PACKAGE}/__init__.py")
        for n in names:
            info = zipfile.ZipInfo(n, ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, whl.read(n))
    os.replace(tmp, target)
    return target


def runtime_requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist without extras and without what the cluster provides."""
    with zipfile.ZipFile(wheel) as whl:
        meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        text = whl.read(meta).decode()
    reqs = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.split(":", 1)[1].strip()
        if "extra ==" in req:
            continue
        name = re.split(r"[<>=!~\[; (]", req, maxsplit=1)[0]
        if norm(name) not in NOT_SHIPPED:
            reqs.append(req)
    return sorted(reqs)


def pins() -> list[str]:
    """``name==version`` of every distribution in this environment: the versions tested here."""
    seen = {}
    for d in md.distributions():
        name = d.metadata["Name"]
        if name and norm(name) not in {"imbal-spark", "pip", "setuptools", "wheel"}:
            seen[norm(name)] = f"{name}=={d.version}"
    return sorted(seen.values())


def build_env(wheel: Path, dist: Path, cache: Path, python: str, python_prefix: str | None) -> Path:
    target = dist / ENV_NAME
    reqs = runtime_requirements(wheel)
    constraints = pins()
    pyver = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                           check=True, capture_output=True, text=True).stdout.strip()
    key = json.dumps({"recipe": RECIPE, "requirements": reqs, "constraints": constraints, "python": python,
                      "python_version": pyver, "python_prefix": python_prefix}, sort_keys=True)
    stamp = cache / "env.json"
    if target.exists() and stamp.exists() and stamp.read_text() == key:
        log(f"{target.name} is up to date")
        return target
    venv = cache / "env-venv"
    venv_stamp = venv / ".imbal-spark-key"
    if not (venv_stamp.exists() and venv_stamp.read_text() == key):
        if venv.exists():
            shutil.rmtree(venv)
        # A plain (no --system-site-packages) venv with regular installs: venv-pack can pack
        # neither an editable install nor a venv that leans on the system's site-packages.
        run([python, "-m", "venv", venv])
        cfile = cache / "constraints.txt"
        cfile.write_text("\n".join(constraints) + "\n")
        run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--no-compile", "-c", cfile, *reqs])
        # .pyc files are shipped: every executor of every application unpacks a fresh copy, and
        # compiling pandas/scipy/sklearn there on each import would cost seconds per executor.
        # Compiled here on all cores (pip compiles on one), skipping the test suites not shipped.
        site = next((venv / "lib").glob("python3.*/site-packages"))
        run([venv / "bin" / "python", "-m", "compileall", "-q", "-j", "0", "-x", r"/tests/", site],
            stdout=subprocess.DEVNULL)
        venv_stamp.write_text(key)
    tmp = dist / f".tmp-{ENV_NAME}"
    cmd = [sys.executable, "-m", "venv_pack", "--prefix", venv, "--output", tmp, "--force", "--quiet",
           "--format", "tar.gz", "--compress-level", "1", "--exclude", ".imbal-spark-key",
           # Test suites of numpy/pandas/scipy/... (a fifth of the bytes) never run on a cluster.
           "--exclude", "*/tests/*",
           "--exclude", "bin/pip*", "--exclude", "lib/python*/site-packages/pip/*",
           "--exclude", "lib/python*/site-packages/pip-*"]
    if python_prefix:
        cmd += ["--python-prefix", python_prefix]
    dist.mkdir(parents=True, exist_ok=True)
    run(cmd)
    os.chmod(tmp, 0o644)  # venv-pack writes 0600; cluster uploaders may run as another user
    os.replace(tmp, target)
    stamp.write_text(key)
    return target


@contextlib.contextmanager
def locked(cache: Path):
    """One build at a time (tests and `make package` may run concurrently)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="package", description=__doc__.split("\n\n")[0])
    p.add_argument("--dist", default=str(ROOT / "dist"), help="output directory (default: dist/)")
    p.add_argument("--python", default=os.environ.get("PACK_PYTHON") or _base_python(),
                   help="interpreter the packed environment is built with (default: this one's base)")
    p.add_argument("--python-prefix", default=os.environ.get("PACK_PYTHON_PREFIX") or None,
                   help="prefix of the cluster nodes' Python (e.g. /usr), if not the build's")
    p.add_argument("--no-env", action="store_true", help="build only the wheel and the zip")
    a = p.parse_args(argv)
    dist, cache = Path(a.dist).resolve(), ROOT / "build" / "package"
    with locked(cache):
        ensure_tools()
        wheel = build_wheel(dist, cache)
        z = build_zip(wheel, dist)
        outputs = [wheel, z]
        if not a.no_env:
            outputs.append(build_env(wheel, dist, cache, a.python, a.python_prefix))
    for f in outputs:
        print(f"{f}  ({f.stat().st_size / 1e6:.1f} MB)")
    return 0


def _base_python() -> str:
    """The interpreter behind this venv: a venv made from it has no tie to .venv."""
    exe = f"python{sysconfig.get_python_version()}"
    cand = Path(sys.base_prefix) / "bin" / exe
    return str(cand) if cand.exists() else sys.executable


if __name__ == "__main__":
    sys.exit(main())
