"""Create (or refresh) the Airflow virtual environment ``.venv-airflow`` (``make airflow-venv``).

    python scripts/airflow_venv.py [--venv .venv-airflow]

Airflow and the Spark provider get their own environment, installed from
``jobs/airflow/requirements.txt``: Airflow 3 brings pandas 3, which imbal-spark's own
environment must not get. Nothing is done when the environment already matches the
requirements file (a hash is kept in the venv), so tests can call this every time.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "jobs" / "airflow" / "requirements.txt"
STAMP = ".imbal-spark-requirements.sha256"


def ensure(venv: Path = ROOT / ".venv-airflow", python: str = sys.executable) -> Path:
    """The venv's ``bin/`` directory, after installing into it if it is missing or stale."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (parallel test runs)
        stamp = venv / STAMP
        if stamp.exists() and stamp.read_text() == digest and (venv / "bin" / "airflow").exists():
            return venv / "bin"
        if venv.exists():
            shutil.rmtree(venv)
        print(f"airflow-venv: creating {venv} from {REQUIREMENTS.relative_to(ROOT)}", file=sys.stderr, flush=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(digest)
    return venv / "bin"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="airflow_venv", description=__doc__.split("\n\n")[0])
    p.add_argument("--venv", default=str(ROOT / ".venv-airflow"))
    a = p.parse_args(argv)
    print(ensure(Path(a.venv).resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
