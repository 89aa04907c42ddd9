"""Random over- and under-sampling with exact per-class counts, without sorting a class in one
partition.

Both give every row two seeded 64-bit keys, ``xxhash64`` of (seed, the whole row): a row's keys
depend only on its content, so the outcome does not depend on partitioning or task order, and
rows with equal keys are identical rows (interchangeable in the output).

* Under-sampling keeps, per class, the ``n`` rows with the smallest keys -- a uniform random
  subset, like imbalanced-learn's ``choice(replace=False)``. Copies of one row (equal in every
  column) would share their keys, and so be kept or dropped together; the threshold pass
  groups the keys alone first (a shuffle of keys, not rows) and so finds them, and only when
  there are some are those rows numbered (a window over the copies only) and given keys of
  (keys, copy number), so every row is drawn independently, as in imbalanced-learn. The exact threshold key is found with
  one aggregation: keys are uniform, so the ``n``-th smallest lies within a few binomial standard
  deviations of ``n / N`` of the key range; the pass counts rows below that window and collects
  only the keys inside it (a few thousand). The output is then a plain row filter.
* Over-sampling splits each class into key-range buckets of about ``max_group_rows / 2`` rows,
  counts them, draws how many copies each bucket makes from a multinomial seeded by (seed,
  class) and, in ``applyInPandas``, draws which rows with a stream seeded by (seed, class,
  bucket). The joint law of the copies is exactly imbalanced-learn's (uniform with replacement).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Tuple

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..hashing import content_hash
from ..names import col, cols, fresh_all
from . import _kernel
from .base import BaseSampler, check_groups, class_index, class_key, is_vector, label_case
from .strategy import OVER, UNDER

_SALT1, _SALT2, _SALT3, _SALT4 = 0x5EED0001, 0x5EED0002, 0x5EED0003, 0x5EED0004
_TWO63 = 1 << 63
#: Half-width of the key window, in binomial standard deviations (+ a few rows).
_SIGMAS = 6.0


def row_keys(df, seed: int):
    """Two independent 64-bit keys per row from the row's content (every column, one to one:
    :mod:`imbal_spark.hashing`) and the seed."""
    return (content_hash(df, F.lit(seed), F.lit(_SALT1)), content_hash(df, F.lit(seed), F.lit(_SALT2)))


def _key_at(u: float) -> int:
    """The signed 64-bit key at fraction ``u`` of the key range."""
    return max(-_TWO63, min(_TWO63 - 1, int(math.floor(u * 2.0**64)) - _TWO63))


class Threshold:
    """Keep rows whose (k1, k2) <= (t1, t2); ``take`` of the rows equal to it when ties straddle."""

    def __init__(self, below_lo=None, t1=None, t2=None, inclusive=True, take=None):
        self.below_lo, self.t1, self.t2, self.inclusive, self.take = below_lo, t1, t2, inclusive, take

    def expr(self, k1, k2):
        if self.below_lo is not None:
            return k1 < F.lit(self.below_lo)
        at = (k1 == F.lit(self.t1)) & ((k2 <= F.lit(self.t2)) if self.inclusive else (k2 < F.lit(self.t2)))
        return (k1 < F.lit(self.t1)) | at


def pick_threshold(keep: int, below: int, window: list) -> Threshold | None:
    """The exact cut from the count of keys below the window and the sorted window keys;
    None when the window missed (the caller widens it)."""
    need = keep - below
    if need < 0 or need > len(window):
        return None
    if need == 0:
        return "EMPTY"
    t = window[need - 1]
    equal = sum(1 for w in window if w == t)
    taken = sum(1 for w in window[:need] if w == t)
    if taken < equal:  # identical rows straddle the cut: keep `taken` of them
        return Threshold(t1=t[0], t2=t[1], inclusive=False, take=taken)
    return Threshold(t1=t[0], t2=t[1])


def find_thresholds(keyed, label_col, targets: dict, counts: dict, labels: list,
                    check_copies: bool = False, keys=("_k1", "_k2")) -> dict | None:
    """{class: Threshold} so that exactly ``targets[c]`` rows of class c are kept.

    With ``check_copies`` the first pass groups the rows by their keys first (one shuffle of the
    keys alone, no row) and returns None if any key recurs: copies of one row, which the caller
    numbers before asking again. Otherwise the same pass gives the thresholds."""
    out = {}
    todo = dict(targets)
    widen = 1.0
    while todo:
        los, his = {}, {}
        for c, keep in todo.items():
            n = counts[c]
            q = keep / n
            half = (widen * (_SIGMAS * math.sqrt(n * q * (1 - q)) + 16)) / n
            los[c] = _key_at(q - half) if q - half > 0 else -_TWO63
            his[c] = _key_at(q + half) if q + half < 1 else _TWO63 - 1
        cic = F.col("_ci")
        lo = hi = None
        for c in todo:
            cond = cic == labels.index(c)
            lo = F.when(cond, F.lit(los[c])) if lo is None else lo.when(cond, F.lit(los[c]))
            hi = F.when(cond, F.lit(his[c])) if hi is None else hi.when(cond, F.lit(his[c]))
        sub = keyed.where(col(label_col).isin(list(todo))).select(
            class_index(label_col, labels).alias("_ci"), F.col(keys[0]).alias("_k1"), F.col(keys[1]).alias("_k2"))
        k1, k2 = F.col("_k1"), F.col("_k2")
        m = F.lit(1)
        if check_copies:  # a row's keys recur only for its copies (or a 128-bit collision)
            sub, m = sub.groupBy("_ci", "_k1", "_k2").agg(F.count(F.lit(1)).alias("_m")), F.col("_m")
        aggs = [F.sum(F.when(k1 < lo, m).otherwise(0)).alias("below"),
                F.collect_list(F.when((k1 >= lo) & (k1 <= hi), F.struct(k1, k2))).alias("win")]
        if check_copies:
            aggs.append(F.max(m).alias("most"))
        agg = sub.groupBy("_ci").agg(*aggs).collect()  # one row per class: counts and a few thousand keys
        if check_copies:
            if any(r["most"] > 1 for r in agg):
                return None
            check_copies = False  # no key recurs: later, wider passes need not group
        res = {labels[r["_ci"]]: r for r in agg}
        for c in list(todo):
            r = res[c]
            window = sorted((w[0], w[1]) for w in r["win"])
            below = r["below"]
            th = pick_threshold(todo[c], below, window)
            if th is None:
                continue
            out[c] = Threshold(below_lo=los[c]) if th == "EMPTY" else th
            del todo[c]
        widen *= 16.0
    return out


class RandomUnderSampler(BaseSampler):
    """Keep a uniformly random subset of exactly the resolved size of each targeted class.

    ``RandomUnderSampler(label_col="label", sampling_strategy="auto", random_state=42)``;
    ``fit_resample(df)`` returns the kept rows unchanged with ``is_synthetic = false``.
    """

    _sampling_type = UNDER
    _method = "random_under"
    _numeric_features = False

    def _fit_resample(self, df, spec, counts, strategy):
        spark = df.sparkSession
        labels = list(counts)
        targets = {c: n for c, n in strategy.items() if n < counts[c]}
        self.groups_ = {}
        if not targets:
            return self._originals(df, spec)
        k1e, k2e = row_keys(df, self.seed_)
        # the keys ride beside the user's columns under names none of them has
        keys = K1, K2, R = fresh_all(["_k1", "_k2", "_r"], df.columns)
        keyed = df.withColumn(K1, k1e).withColumn(K2, k2e)
        k1, k2 = F.col(K1), F.col(K2)
        with self.timings_.step(spark, "find exact thresholds"):
            th = find_thresholds(keyed, self.label_col, targets, counts, labels, check_copies=True, keys=keys[:2])
        if th is None:  # some rows have copies: number them so each is drawn on its own
            with self.timings_.step(spark, "number copies of identical rows"):
                keyed = self._number_copies(keyed, list(targets), keys)
                th = find_thresholds(keyed, self.label_col, targets, counts, labels, keys=keys[:2])
        label = col(self.label_col)
        cond = ~label.isin(list(targets))
        for c, t in th.items():
            cond = cond | ((label == F.lit(c)) & t.expr(k1, k2))
        kept = keyed.where(cond)
        for c, t in th.items():
            if t.take:  # rows identical to the cut straddle it: keep exactly `take` of them
                w = Window.partitionBy(k1, k2).orderBy(k1)
                ties = (keyed.where((label == F.lit(c)) & (k1 == F.lit(t.t1)) & (k2 == F.lit(t.t2)))
                        .withColumn(R, F.row_number().over(w)).where(F.col(R) <= t.take).drop(R))
                kept = kept.unionByName(ties)
        return self._originals(kept.drop(K1, K2), spec)

    def _number_copies(self, keyed, targeted: list, keys):
        """Give each copy of a row in a targeted class keys of its own, so copies are drawn one by
        one. The keys that recur are found by one aggregation of the keys alone; only the rows
        holding them are shuffled, numbered 1..m by a window and re-keyed from (keys, number).
        Copies are identical, so which copy gets which number does not change the output. The
        numbered rows are cached (released by :meth:`release`) so the threshold pass and the
        output see the same numbering."""
        self._cached = getattr(self, "_cached", [])
        K1, K2, _ = keys
        J, K1N = fresh_all(["_j", "_k1n"], keyed.columns)
        recurring = (keyed.where(col(self.label_col).isin(targeted)).groupBy(K1, K2)
                     .agg(F.count(F.lit(1)).alias("_m")).where(F.col("_m") > 1)
                     .select(K1, K2).persist(StorageLevel.MEMORY_AND_DISK))
        self._cached.append(recurring)
        # semi / anti joins against the cached (so measured) key set: Spark broadcasts it when
        # it is small and shuffles both sides when it is not
        single = keyed.join(recurring, [K1, K2], "left_anti")
        j = F.row_number().over(Window.partitionBy(K1, K2).orderBy(K1))
        copies = (keyed.join(recurring, [K1, K2], "left_semi").withColumn(J, j)
                  .withColumn(K1N, F.xxhash64(F.lit(self.seed_), F.lit(_SALT3), K1, K2, J))
                  .withColumn(K2, F.xxhash64(F.lit(self.seed_), F.lit(_SALT4), K1, K2, J))
                  .drop(K1, J).withColumnRenamed(K1N, K1)
                  .select(*cols(keyed.columns)).persist(StorageLevel.MEMORY_AND_DISK))
        self._cached.append(copies)
        return single.unionByName(copies)


class RandomOverSampler(BaseSampler):
    """Add copies of uniformly drawn rows (with replacement) until each targeted class has the
    resolved size. New rows copy the feature columns and the label; other columns are null."""

    _sampling_type = OVER
    _method = "random_over"
    _numeric_features = False

    def _fit_resample(self, df, spec, counts, strategy):
        spark = df.sparkSession
        seed = self.seed_
        labels = list(counts)
        idx = {c: i for i, c in enumerate(labels)}
        targets = {c: n for c, n in strategy.items() if n > 0}
        originals = self._originals(df, spec)
        self.groups_ = {}
        if not targets:
            return originals
        def bits_for(n, m):  # a class above m rows: 2^bits buckets of about m / 2 rows (by its draw key)
            return 0 if n <= m else math.ceil(math.log2(n / max(1, m // 2)))

        for c in targets:
            check_groups(c, counts[c], self.max_group_rows, lambda m, n=counts[c]: 1 << bits_for(n, m))
        bits = {c: bits_for(counts[c], self.max_group_rows) for c in targets}
        k1e, k2e = row_keys(df, seed)
        copy = [spec.vector] if spec.vector else list(spec.columns)
        vec = [c for c in copy if is_vector(spec.types[c])]
        from pyspark.ml.functions import array_to_vector, vector_to_array

        # internal names by position: PySpark's applyInPandas names its input columns unquoted
        # (a dotted name fails), and a user's column may be called _c or _k1
        vals = fresh_all([f"_v{j}" for j in range(len(copy))], df.columns)  # the label is written beside them
        sel = [(col(c) if c not in vec else vector_to_array(col(c))).alias(v) for c, v in zip(copy, vals)]
        ci = class_index(self.label_col, labels).cast("int")
        bucket = F.lit(0).cast("long")
        for c, b in bits.items():
            if b:
                bucket = F.when(F.col("_c") == idx[c], F.shiftrightunsigned(F.col("_k1"), 64 - b)).otherwise(bucket)
        keyed = (df.where(col(self.label_col).isin(list(targets)))
                 .select(ci.alias("_c"), k1e.alias("_k1"), k2e.alias("_k2"), *sel)
                 .withColumn("_b", bucket))
        sizes = {idx[c]: {0: counts[c]} for c, b in bits.items() if not b}
        split = [idx[c] for c, b in bits.items() if b]
        if split:
            with self.timings_.step(spark, "count buckets"):
                for r in keyed.where(F.col("_c").isin(split)).groupBy("_c", "_b").count().collect():
                    sizes.setdefault(r["_c"], {})[r["_b"]] = r["count"]
        plans = {}
        for c, n_add in targets.items():
            i = idx[c]
            bs = sorted(sizes[i])
            p = np.array([sizes[i][b] for b in bs], dtype=np.float64)
            drawn = np.random.default_rng([seed, class_key(c)]).multinomial(n_add, p / p.sum())
            plans[i] = {"key": class_key(c), "alloc": {b: int(m) for b, m in zip(bs, drawn) if m > 0}}
            self.groups_[c] = {"groups": len(bs), "rows_min": int(p.min()), "rows_max": int(p.max())}
        width = max(1, len(copy))
        from .smote import parts_for

        parts = {(i, b): parts_for(m, width) for i, p in plans.items() for b, m in p["alloc"].items()}
        big = {key: v for key, v in parts.items() if v > 1}
        if big:
            pexpr = F.lit(1)
            for (i, b), v in big.items():
                pexpr = F.when((F.col("_c") == i) & (F.col("_b") == b), F.lit(v)).otherwise(pexpr)
            keyed = keyed.withColumn("_p", F.explode(F.sequence(F.lit(0), pexpr - 1)))
        else:
            keyed = keyed.withColumn("_p", F.lit(0))
        out_schema = T.StructType([T.StructField("_c", T.IntegerType())] +
                                  [f for f in keyed.schema.fields if f.name in vals])
        fn = _make_copier(plans, parts, vals, seed)
        new = keyed.groupBy("_c", "_b", "_p").applyInPandas(fn, out_schema)
        new = new.withColumn(self.label_col, label_case(df.schema[self.label_col].dataType, labels, "_c"))
        new = new.select(*[(F.col(v) if c not in vec else array_to_vector(F.col(v))).alias(c) for c, v in zip(copy, vals)],
                         col(self.label_col))
        return originals.unionByName(self._with_nulls(new, originals))


def _make_copier(plans, parts, copy, seed):
    """The applyInPandas function: one (class, bucket, part) -> its copies, streamed."""
    from .smote import OUT_VALUES

    step = max(1, OUT_VALUES // max(len(copy), 1))

    def copier(key: Tuple[Any, ...], batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        i, b, p = (int(v) for v in key)
        plan = plans[i]
        n_new = plan["alloc"].get(b, 0)
        pdf = pd.concat(list(batches), ignore_index=True)
        if n_new == 0 or len(pdf) == 0:
            return
        pdf = pdf.sort_values(["_k1", "_k2"], kind="mergesort", ignore_index=True)[["_c", *copy]]
        rs = _kernel.group_random_state(seed, plan["key"], b)
        c = math.ceil(n_new / parts[(i, b)])  # this part's draws: positions [p*c, (p+1)*c), made in chunks
        for pick in _kernel.randint_range(rs, len(pdf), n_new, p * c, (p + 1) * c, chunk=step):
            yield pdf.iloc[pick].reset_index(drop=True)

    return copier
