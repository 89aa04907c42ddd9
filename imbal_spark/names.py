"""Column references that take a column's name as it is.

Spark parses a column name given as a string: ``a.b`` is field ``b`` of column ``a`` and a
backtick starts a quoted part. A data set's own columns may hold either character (CSV
headers, pandas frames), so every reference to a user's column goes through :func:`col` or
:func:`ref`, which quote the name; internal names are plain and need neither.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def ref(name: str) -> str:
    """``name`` quoted for Spark's parser (dots and backticks are part of the name), as the
    string that string-taking APIs (MLlib's ``inputCols``, ``F.col``) resolve to that column."""
    return "`" + name.replace("`", "``") + "`"


def needs_quotes(name: str) -> bool:
    """Whether Spark would parse ``name`` as something else than the column of that name."""
    return "." in name or "`" in name


def col(name: str) -> Column:
    """The top-level column ``name``, whatever characters it holds."""
    return F.col(ref(name))


def cols(names) -> list[Column]:
    return [col(c) for c in names]


def fresh(base: str, taken) -> str:
    """``base``, or ``base`` with leading underscores added until no column of ``taken`` has the
    name (Spark compares names without regard to case): an internal column added beside a
    user's columns must never replace one of them."""
    low = {t.lower() for t in taken}
    name = base
    while name.lower() in low:
        name = "_" + name
    return name


def fresh_all(bases, taken) -> list[str]:
    """:func:`fresh` for each of ``bases``, distinct from ``taken`` and from each other."""
    taken, out = list(taken), []
    for b in bases:
        out.append(fresh(b, taken))
        taken.append(out[-1])
    return out
