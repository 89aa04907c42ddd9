"""Run a job's ``main`` the way users expect: one clear error line and exit 2 on bad input."""

from __future__ import annotations

import contextlib
import logging
import sys

from .errors import ImbalSparkError


class _Terminated(BaseException):
    """SIGTERM (Airflow's timeout, a scheduler's kill) as an exception, so the staged output's
    clean-up runs as it does on Ctrl-C instead of leaving its temporary directory behind."""


_deferring = [0]   # > 0 inside sigterm_deferred()
_pending = [False]  # a SIGTERM arrived meanwhile


def _on_sigterm(signum, frame):
    if _deferring[0]:
        _pending[0] = True
        return
    raise _Terminated()


@contextlib.contextmanager
def sigterm_deferred():
    """SIGTERM waits until the block ends: the few renames that swap a staged output in must
    not be cut between moving the old output aside and moving the new one in."""
    _deferring[0] += 1
    try:
        yield
    finally:
        _deferring[0] -= 1
        if not _deferring[0] and _pending[0]:
            _pending[0] = False
            raise _Terminated()


def _terminated(e: BaseException) -> bool:
    """Whether ``e`` is, or was raised while handling, a SIGTERM (a clean-up that failed because
    the JVM died with the signal must not hide it)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, _Terminated):
            return True
        seen.add(id(e))
        e = e.__context__
    return False


def run(main, argv=None) -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except ImbalSparkError as e:
        logging.getLogger("imbal_spark").debug("error", exc_info=True)
        print(f"error: {e}", file=sys.stderr, flush=True)
        _stop_spark()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted; the destination was left untouched", file=sys.stderr)
        _stop_spark()
        sys.exit(130)
    except _Terminated:
        print("error: terminated (SIGTERM); no partial output was left at the destination", file=sys.stderr)
        _stop_spark()
        sys.exit(143)
    except Exception as e:
        if _terminated(e):
            print("error: terminated (SIGTERM)", file=sys.stderr)
            _stop_spark()
            sys.exit(143)
        msg = unreadable_input(e)
        if msg is None:
            raise
        logging.getLogger("imbal_spark").debug("error", exc_info=True)
        print(f"error: {msg}", file=sys.stderr, flush=True)
        _stop_spark()
        sys.exit(2)
    sys.exit(code or 0)


def unreadable_input(e) -> str | None:
    """The one-line message of a Spark job that failed reading an input file (a corrupt data page,
    a file changed or removed while read: Spark's FAILED_READ_FILE error class); None for any
    other failure, which keeps its stack trace."""
    import re

    text = str(e)
    if "FAILED_READ_FILE" not in text:
        return None
    path = re.search(r"while reading file (\S+?)\.?\s", text)
    cause = re.search(r"Caused by: ([^\n]+)", text)
    where = f" {path.group(1)}" if path else ""
    why = f" ({cause.group(1).strip()[:200]})" if cause else ""
    return (f"cannot read input file{where}{why}: it is corrupt, or changed while being read; "
            f"replace or remove it and run again")


def _stop_spark():
    try:
        from pyspark.sql import SparkSession

        s = SparkSession.getActiveSession()
        if s is not None:
            s.stop()
    except Exception:  # pragma: no cover - best effort on the way out
        pass
