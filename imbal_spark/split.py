"""Stratified train/test split at scale, with scikit-learn's per-class counts.

Counts (``split_counts``) are those of ``train_test_split(..., test_size=f, stratify=y,
random_state=seed)`` exactly, to the row:

* ``n_test = ceil(f * n)`` and ``n_train = n - n_test`` (scikit-learn's ``_validate_shuffle_split``
  with a float ``test_size``: the test side is rounded up, the train side down);
* per class, ``train_c = floor(n_c / n * n_train)``, then the rows still missing go one each to
  the classes with the largest fractional remainder; equal remainders are broken with
  ``numpy.random.RandomState(seed).choice`` exactly as scikit-learn's ``_approximate_mode`` does;
* ``test_c = n_c - train_c``.

Which rows go to the test side: each row gets a 64-bit key ``xxhash64(seed, row)`` and the
``test_c`` rows of class ``c`` with the smallest keys form the test set. The key depends only
on the row's content and the seed, so the split is the same whatever the partitioning, file
order or cluster size. The ``test_c``-th key of each class is found with radix passes (one
``groupBy(class, 12-bit digit).count()`` per pass, all classes at once, the last pass over at
most 10,000 keys per class; a window per class finds where the running count reaches the rank,
so one row per class reaches the driver); 1 pass up to 10,000 rows per class, 2 up to ~40
million, 3 beyond. Rows sharing the cut-off key (identical rows) are split by ``row_number``
over those rows only.
"""

from __future__ import annotations

import math

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .distribution import class_counts, label_sort_key
from .hashing import content_hash
from .errors import ConfigError, InputError
from .names import col, fresh_all

KEY = "_split_key"
#: A class whose candidate range holds at most this many rows is resolved by exact key counts.
EXACT_ROWS = 10_000
DIGIT_BITS = 12


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """scikit-learn's ``_approximate_mode``, statement for statement (same floats, same RNG calls)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        values = np.sort(np.unique(remainder))[::-1]
        for value in values:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def split_counts(counts: dict, test_size: float, seed: int, what: str = "test_size") -> tuple[dict, dict]:
    """``({label: train rows}, {label: test rows})`` as scikit-learn's stratified split gives them.

    ``counts`` maps each class to its row count; classes are taken in sorted order (as
    ``numpy.unique`` sorts them), which decides how the RNG breaks ties.
    """
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise ConfigError(f"{what} must be a fraction between 0 and 1 (exclusive), got {test_size!r}")
    labels = sorted(counts, key=label_sort_key)
    cc = np.array([counts[c] for c in labels], dtype=np.int64)
    n = int(cc.sum())
    small = [str(c) for c, m in zip(labels, cc) if m < 2]
    if small:
        raise InputError(
            f"class(es) {', '.join(small)} have fewer than 2 rows, too few for a stratified split "
            f"(scikit-learn refuses too); add rows of these classes or drop them"
        )
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_train < len(labels) or n_test < len(labels):
        raise InputError(
            f"a stratified split of {n} rows with {what}={test_size} gives {n_train} train and "
            f"{n_test} held-out rows, fewer than the {len(labels)} classes; change {what}"
        )
    rng = np.random.RandomState(seed)
    train = _approximate_mode(cc, n_train, rng)
    # scikit-learn draws the test counts from what is left; with n_train + n_test = n that is
    # exactly the remainder (the RNG is not consulted), so no second draw is needed.
    test = cc - train
    return ({c: int(t) for c, t in zip(labels, train)}, {c: int(t) for c, t in zip(labels, test)})


#: Salt of the second content hash that orders rows tied at a cut-off key.
_SECOND_KEY = 0x5EED7E57


def row_key(df: DataFrame, seed: int, exclude=()):
    """A 64-bit key from the row's content (one to one: :mod:`imbal_spark.hashing`) and the seed."""
    return content_hash(df, F.lit(int(seed)).cast("long"), exclude=exclude)


def _in_class(label_col, label):
    return col(label_col) == F.lit(label)


def find_cutoffs(keyed: DataFrame, label_col: str, ranks: dict, totals: dict, key_col: str = KEY) -> dict:
    """For each class ``c``: ``(K_c, less_c, at_c)`` such that the ``ranks[c]``-th smallest key of
    class ``c`` (1-based) is ``K_c``, ``less_c`` rows of class ``c`` have a key ``< K_c`` and
    ``at_c`` rows have the key ``K_c``.

    Radix search on the signed 64-bit key: digits of 12 bits from the top; a class whose
    current range is small enough is finished with one exact ``groupBy(label, key)``.
    """
    # state per class: (shift, prefix, rows below the range, rank inside the range, rows in range)
    state = {c: (64, None, 0, r, totals[c]) for c, r in ranks.items()}
    result = {}
    while state:
        exact = {c: s for c, s in state.items() if s[4] <= EXACT_ROWS or s[0] <= 0}
        radix = {c: s for c, s in state.items() if c not in exact}
        conds = []
        for c, (shift, prefix, *_rest) in exact.items():
            cond = _in_class(label_col, c)
            if prefix is not None:
                cond = cond & (F.shiftright(F.col(key_col), shift) == F.lit(prefix))
            conds.append(cond)
        if exact:
            counted = (keyed.where(_or(conds))
                       .groupBy(_class_number(label_col, exact).alias("_l"), F.col(key_col).alias("_v")).count())
            for c, (key, seen, cnt) in _crossings(counted, {c: s[3] for c, s in exact.items()}).items():
                result[c] = (key, exact[c][2] + seen, cnt)
        new_state = {}
        if radix:
            digit_expr = None
            conds = []
            for c, (shift, prefix, *_rest) in radix.items():
                nshift = max(shift - DIGIT_BITS, 0)
                width = shift - nshift
                cond = _in_class(label_col, c)
                if prefix is not None:
                    cond = cond & (F.shiftright(F.col(key_col), shift) == F.lit(prefix))
                conds.append(cond)
                # the top digit keeps its sign (arithmetic shift), lower digits are masked
                d = F.shiftright(F.col(key_col), nshift)
                if prefix is not None:
                    d = d.bitwiseAND(F.lit((1 << width) - 1))
                digit_expr = (F.when(_in_class(label_col, c), d) if digit_expr is None
                              else digit_expr.when(_in_class(label_col, c), d))
            counted = (keyed.where(_or(conds))
                       .groupBy(_class_number(label_col, radix).alias("_l"), digit_expr.alias("_v")).count())
            for c, (digit, seen, cnt) in _crossings(counted, {c: s[3] for c, s in radix.items()}).items():
                shift, prefix, below, rank, _n = radix[c]
                nshift = max(shift - DIGIT_BITS, 0)
                npref = digit if prefix is None else (prefix << (shift - nshift)) | digit
                new_state[c] = (nshift, npref, below + seen, rank - seen, cnt)
        state = new_state
    return result


def _class_number(label_col: str, classes: dict):
    """The position of a row's class in ``classes`` (its keys, in order): the counted frames are
    keyed by it, so labels never travel back and need not compare equal in Python."""
    expr = None
    for i, c in enumerate(classes):
        cond = _in_class(label_col, c)
        expr = F.when(cond, F.lit(i)) if expr is None else expr.when(cond, F.lit(i))
    return expr


def _crossings(counted: DataFrame, want: dict) -> dict:
    """``{class: (value, rows before it, rows at it)}``: for each class, the value (ascending) at
    which the running count of ``counted`` (columns ``_l`` the class's position in ``want``
    (:func:`_class_number`), ``_v`` value, ``count``) reaches ``want[class]``. A window per class
    over its counted values (at most ``EXACT_ROWS`` or 4096 of them) finds it on the executors:
    one row per class reaches the driver, not every value."""
    classes = list(want)
    rank = None
    for i, r in enumerate(want.values()):
        cond = F.col("_l") == F.lit(i)
        rank = F.when(cond, F.lit(r)) if rank is None else rank.when(cond, F.lit(r))
    w = Window.partitionBy("_l").orderBy("_v").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    seen = F.col("_cum") - F.col("count")
    rows = (counted.withColumn("_cum", F.sum("count").over(w)).withColumn("_rank", rank)
            .where((F.col("_cum") >= F.col("_rank")) & (seen < F.col("_rank")))
            .select("_l", "_v", seen.alias("_seen"), "count").collect())  # one row per class
    out = {classes[r[0]]: (r[1], r[2], r[3]) for r in rows}
    if len(rows) != len(want) or len(out) != len(want):  # counts changed between passes
        raise InputError("the input changed while it was being split; make it deterministic "
                         "(e.g. write it to Parquet first)")
    return out


def _or(conds):
    out = conds[0]
    for c in conds[1:]:
        out = out | c
    return out


def split_by_counts(df: DataFrame, label_col: str, test_counts: dict, seed: int,
                    counts: dict) -> tuple[DataFrame, DataFrame]:
    """(rest, held-out): exactly ``test_counts[c]`` rows of each class ``c`` (of ``counts[c]``) held out."""
    key, rn = fresh_all([KEY, "_rn"], df.columns)  # never one of the user's columns
    keyed = df.withColumn(key, row_key(df, seed))
    ranks = {c: t for c, t in test_counts.items() if t > 0}
    cut = find_cutoffs(keyed, label_col, ranks, counts, key) if ranks else {}
    # held out: key < K_c, plus (rank - less) of the rows whose key equals K_c
    less = None
    tie_conds, tie_need = [], {}
    for c, (k, n_less, n_at) in cut.items():
        if ranks[c] - n_less == n_at:  # the usual case: one row at the cut-off key, all of it held out
            cond = _in_class(label_col, c) & (F.col(key) <= F.lit(k))
        else:
            cond = _in_class(label_col, c) & (F.col(key) < F.lit(k))
            tie_conds.append(_in_class(label_col, c) & (F.col(key) == F.lit(k)))
            tie_need[c] = ranks[c] - n_less
        less = cond if less is None else less | cond
    if less is None:
        return df, df.limit(0)
    if not tie_conds:  # a narrow filter on each side, no shuffle
        held = keyed.where(less).drop(key)
        rest = keyed.where(~less | col(label_col).isNull()).drop(key)
        return rest, held
    ties = _or(tie_conds)
    # rows that are not at a cut-off key: a narrow filter, no shuffle
    plain = keyed.where(~ties | col(label_col).isNull())
    # rows at a cut-off key (usually one per class; more only for duplicated rows): ranked by a
    # second, independent hash of their content (any column type can be hashed, not every one
    # ordered), so that only identical rows, interchangeable, are left in window order
    w = Window.partitionBy(col(label_col), key).orderBy(row_key(df, seed ^ _SECOND_KEY))
    need = None
    for c, m in tie_need.items():
        need = F.when(_in_class(label_col, c), F.lit(m)) if need is None else need.when(_in_class(label_col, c), F.lit(m))
    tied = keyed.where(ties).withColumn(rn, F.row_number().over(w))
    held_tied = tied.where(F.col(rn) <= need).drop(rn, key)
    rest_tied = tied.where(F.col(rn) > need).drop(rn, key)
    held = plain.where(less).drop(key).unionByName(held_tied)
    rest = plain.where(~less | col(label_col).isNull()).drop(key).unionByName(rest_tied)
    return rest, held


def stratified_split(df: DataFrame, label_col: str, test_size: float = 0.25, seed: int = 42,
                     counts: dict | None = None, what: str = "test_size"):
    """``(train, test, info)``: a stratified split with scikit-learn's per-class counts.

    ``info`` holds ``train_counts`` and ``test_counts`` ({label: rows}). Rows with a null label
    are an error (they belong to no class). ``counts`` saves the counting aggregation.
    """
    if counts is None:
        counts, nulls = class_counts(df, label_col)
        if nulls:
            raise InputError(
                f"label column {label_col!r} has {nulls} null value(s); drop or fill them before "
                f"splitting"
            )
    nan = sum(n for c, n in counts.items() if isinstance(c, float) and c != c)
    if nan:  # as the samplers: NaN is no class
        raise InputError(f"label column {label_col!r} has {nan} NaN value(s); drop or label those rows "
                         f"before splitting")
    if not counts:
        raise InputError(f"label column {label_col!r} has no rows to split")
    train_counts, test_counts = split_counts(counts, test_size, seed, what)
    train, test = split_by_counts(df, label_col, test_counts, seed, counts)
    return train, test, {"train_counts": train_counts, "test_counts": test_counts}
