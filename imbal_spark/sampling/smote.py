"""Partitioned SMOTE on Spark with imbalanced-learn's semantics.

Per class to over-sample:

* a class of at most ``max_group_rows`` rows is one group: its rows, in canonical order (the
  ``order_col``, then the feature values), go to one task that runs exactly imbalanced-learn's
  draw with ``RandomState(random_state)``: with the reference order this *is* imbalanced-learn's
  output, to the bit;
* a larger class is cut into groups of nearby rows (:mod:`.grouping`, computed by Spark passes
  over the cached class rows), the class's new-row count is split over the groups by a
  multinomial draw seeded by (seed, class) -- the same law as imbalanced-learn's uniform choice
  of base rows -- and each group runs the kernel with a stream seeded by (seed, class, group).

The kernel runs in a grouped Arrow UDF (``applyInArrow`` over iterators of record batches: Spark's
grouped map, as ``applyInPandas``, without pandas frames of the rows; one k-NN index per group),
takes each row's features packed in one binary value and streams its new rows out in chunks of
``OUT_VALUES`` values, so a task never holds a group's whole output. A large group is
spread over several tasks ("parts"): each holds the group's rows as the k-NN index, replays the
group's stream and keeps the draws whose base row it owns, so the k-NN search (the dominant cost,
quadratic in the group's rows) is divided between tasks, not repeated. The output is the input rows
unchanged plus the new rows with ``is_synthetic`` true and every non-feature column null. New
values are computed in double and cast to each feature column's type, as imbalanced-learn casts
its output back to the input dtypes (an integer feature is truncated; cast it to double first to
keep the interpolated value).
"""

from __future__ import annotations

import itertools
import math
from typing import Iterator, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..errors import ConfigError, InputError
from ..names import col, fresh_all
from . import _kernel
from ._kernel import lex_order  # noqa: F401 (the kernel's canonical order; imported from here by callers)
from .base import SYNTHETIC_COL, BaseSampler, check_groups, class_index, class_key, label_case
from .grouping import (DUP_COL, MAX_HALO, MAX_SAMPLE_ROWS, arrow_matrix, build_group_model, cells_wanted, class_sample,
                       dup_of, expand, sample_size)
from .neighbours import RecallProbe
from .strategy import OVER

#: Most new values (rows x features) one task generates; bigger outputs are split over tasks.
GEN_VALUES = 1 << 27
#: New values per pandas DataFrame a kernel task yields (8 MiB of float64).
OUT_VALUES = 1 << 20


def canonical_order(pdf: pd.DataFrame, xcols: list, order_col: str | None) -> pd.DataFrame:
    """Rows of a group in a fixed order whatever order they arrived in: by ``order_col`` (the
    reference order, for parity) and then by the feature values (rows equal in all of them are
    interchangeable: their new rows are the same)."""
    keys = ([order_col] if order_col else []) + list(xcols)
    o = lex_order([pdf[c].to_numpy() for c in keys])
    if o is None:
        return pdf.sort_values(keys, kind="mergesort", ignore_index=True)
    return pdf.iloc[o].reset_index(drop=True)


def parts_for(n_new: int, width: int) -> int:
    return max(1, math.ceil(n_new * max(width, 1) / GEN_VALUES))


#: A one-group class up to this many rows searches neighbours with scikit-learn itself (bit parity
#: with imbalanced-learn, ties included); a larger one, where imbalanced-learn takes minutes, with
#: the ~3x faster exact search of ``_kernel.fast_neighbours`` (the same neighbours, exact float64
#: distances; only rows at equal distance may be ordered differently than scikit-learn orders them).
PARITY_SEARCH_ROWS = 20_000
#: Part boundaries are multiples of scikit-learn's brute-force query chunk.
PART_ALIGN = 256
#: Below this many row pairs (a few seconds of k-NN) a group's search is not split over tasks.
SPLIT_PAIRS = 2e9
#: A group whose k-NN index (halo included) holds at most this many rows and whose output needs
#: more tasks than it has query blocks of ``PART_ALIGN`` rows (a small class over-sampled tens of
#: thousands of times) shares out its *draws* instead: each part searches the whole group (at
#: most 4e8 row pairs, a few seconds, against the millions of rows it writes) and makes one
#: range of draw positions.
DRAW_SPLIT_ROWS = PARITY_SEARCH_ROWS


def part_bounds(n: int, part: int, parts: int) -> tuple[int, int]:
    """Base rows ``[lo, hi)`` (canonical order) owned by ``part`` of ``parts``."""
    c = -(-(-(-n // parts)) // PART_ALIGN) * PART_ALIGN
    return min(part * c, n), min((part + 1) * c, n)


def draw_bounds(n_new: int, part: int, parts: int) -> tuple[int, int]:
    """Draw positions ``[a, b)`` made by ``part`` of ``parts`` when a group shares out its draws."""
    c = -(-n_new // parts)
    return min(part * c, n_new), min((part + 1) * c, n_new)


def splits_draws(rows: int, parts: int) -> bool:
    """Whether :func:`plan_parts` shared out a group's draws (more parts than query blocks)."""
    return parts > -(-rows // PART_ALIGN)


def plan_parts(groups: dict, width: int, cores: int) -> dict:
    """{(class index, group): parts}: how many tasks share each group's work.

    The k-NN of a group costs ~rows^2 pairs; a group's parts split its *query* rows (each part
    holds the whole group as the index, searches neighbours of its own base rows only), so parts
    divide the dominant cost instead of repeating it. Parts go to groups in proportion to their
    share of all pairs, aiming at two tasks per core (a balanced tail), and never fewer than
    the output size needs (``parts_for``): query rows are shared out in blocks of ``PART_ALIGN``,
    and a small group whose output needs more parts than it has blocks shares out its draws
    (:func:`splits_draws`). ``groups``: {(ci, g): (rows, n_new)} or
    {(ci, g): (rows, n_new, index rows)} when the index holds a halo (pairs: rows x index rows)."""
    pairs = {key: float(v[0]) * float(v[2] if len(v) > 2 else v[0]) for key, v in groups.items()}
    total = sum(pairs.values())
    out = {}
    for key, (rows, n_new, *index) in groups.items():
        p = parts_for(n_new, width)
        blocks = -(-rows // PART_ALIGN)
        if p > blocks and (index[0] if index else rows) <= DRAW_SPLIT_ROWS:  # every part searches it all
            out[key] = p
            continue
        if total >= SPLIT_PAIRS and pairs[key] > 0:
            p = max(p, math.ceil(2 * cores * pairs[key] / total))
        out[key] = max(1, min(p, blocks))
    return out


def generate_chunks(X: np.ndarray, n_new: int, k: int, rs: np.random.RandomState, part: int = 0,
                    parts: int = 1, parity: bool = True, chunk_rows: int | None = None,
                    n_base: int | None = None, by_draws: bool = False, probe=None):
    """Yield, in chunks of ``chunk_rows``, the new rows of a group that ``part`` of ``parts`` makes:
    the draws whose base row lies in its rows (:func:`part_bounds`), or with ``by_draws`` the
    draws at its positions (:func:`draw_bounds`), in draw order. Every part replays the group's
    draw (imbalanced-learn's ``randint`` then ``uniform``) in chunks (:func:`_kernel.draw_stream`),
    so a task holds O(chunk) of it, and searches neighbours for its own rows only (all rows with
    ``by_draws``). With one part this is imbalanced-learn's output in its order; the parts together
    give the same rows. ``parity`` (a class in one group) uses imbalanced-learn's own neighbour
    search up to ``PARITY_SEARCH_ROWS`` rows; larger groups use the faster exact search for large
    high-dimensional groups. ``n_base``: the first ``n_base`` rows of ``X`` are the group's own
    (base) rows, the rest its halo, searched but never drawn. ``probe``: (centroids, cells probed)
    of a split class's group whose rows search only their nearest cells."""
    n = X.shape[0] if n_base is None else n_base
    if by_draws:
        (lo, hi), (a, b) = (0, n), draw_bounds(n_new, part, parts)
    else:
        (lo, hi), (a, b) = part_bounds(n, part, parts), (0, n_new)
    draws = _kernel.draw_stream(n, k, n_new, rs, lo, hi, a, b)
    first = next(draws, None)
    if first is None:  # no draw of this part's: no search
        return
    if parity and X.shape[0] <= PARITY_SEARCH_ROWS:
        nn = _kernel.neighbours(X, k, lo, hi)
    else:
        nn = _kernel.group_neighbours(X, k, lo, hi, probe=None if parity else probe)
    step = chunk_rows or max(1, OUT_VALUES // max(X.shape[1], 1))
    for rows, cols, steps in _rechunk(itertools.chain([first], draws), step):
        yield _kernel.interpolate(X, _kernel.Draw(rows, nn[rows - lo, cols], steps, nn))


def _rechunk(pieces, size: int):
    """Pieces of (rows, cols, steps) arrays regrouped into pieces of ``size`` draws (the last may
    be shorter): output frames of one size whatever each draw chunk kept."""
    held, n = [], 0
    for piece in pieces:
        held.append(piece)
        n += len(piece[0])
        if n < size:
            continue
        cat = held[0] if len(held) == 1 else tuple(np.concatenate([h[i] for h in held]) for i in range(3))
        full = n - n % size
        for s in range(0, full, size):
            yield tuple(c[s:s + size] for c in cat)
        held, n = ([tuple(c[full:] for c in cat)] if full < n else []), n - full
    if n:
        yield held[0] if len(held) == 1 else tuple(np.concatenate([h[i] for h in held]) for i in range(3))


def generate_part(X, n_new, k, rs, part=0, parts=1, parity=True, n_base=None, by_draws=False) -> np.ndarray:
    """All rows of :func:`generate_chunks` as one array (tests, small groups)."""
    out = list(generate_chunks(X, n_new, k, rs, part, parts, parity, n_base=n_base, by_draws=by_draws))
    return np.vstack(out) if out else np.empty((0, X.shape[1]))


def check_probe(p):
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 < p <= 1:
        raise ConfigError(f"probe must be a number above 0 and at most 1 (the share of a split class's k-NN "
                          f"index each row searches: its nearest cells; 1 searches all of it), got {p!r}")


def check_halo(h):
    if isinstance(h, bool) or not isinstance(h, (int, float, np.integer, np.floating)) or not 0 <= h <= MAX_HALO:
        raise ConfigError(f"halo must be a number from 0 to {MAX_HALO} (the share of a k-NN index given to "
                          f"neighbouring groups' rows), got {h!r}")


class SMOTE(BaseSampler):
    """SMOTE over a Spark DataFrame.

    >>> s = SMOTE(label_col="label", k_neighbors=5, random_state=42)
    >>> out = s.fit_resample(df)            # lazy: new rows are made when ``out`` is written
    >>> s.sampling_strategy_, s.summary_

    ``features``: None (every numeric column except the label, ``id_cols``, ``weight_col``,
    ``order_col`` and ``is_synthetic``), a list of numeric columns, or the name of one MLlib
    vector column (the output keeps that form). ``order_col``: a column whose ascending order is
    the row order imbalanced-learn would see (for parity); otherwise the feature values order the
    rows. Classes split into groups are cached; call :meth:`release` once the output is written.

    ``max_group_rows`` bounds the rows of one k-NN index (the memory of one task and, with the
    class's rows, the k-NN cost). A larger class is cut into groups and ``halo`` (0 to 0.9) is the
    share of each index given to rows of neighbouring groups (see :mod:`.grouping`): 0 cuts the
    class into the fewest groups; the default 0.6 cuts smaller groups and finds most of the
    neighbours the cuts separate, for ~1/3 more k-NN work on 20-dimensional data.

    ``probe`` (above 0, at most 1) is the share of its group's k-NN index each row of a split class
    searches: a large high-dimensional index is cut into cells of ~400 rows around centroids fitted
    to the grouping sample, and a row searches the cells nearest it (exactly over those rows). The
    default 0.15 keeps ~0.99 of the neighbours the index holds on the benchmark data for ~1/3 of
    the k-NN time; 1 searches every row of the index. The summary's neighbour recall counts it. A
    class in one group is always searched whole (imbalanced-learn's neighbours).
    """

    _sampling_type = OVER
    _method = "smote"

    def __init__(self, label_col="label", features=None, sampling_strategy="auto", k_neighbors=5,
                 random_state=42, max_group_rows=100_000, id_cols=(), order_col=None,
                 weight_col="weight", recall_sample=200, halo=0.6, probe=0.15):
        super().__init__(label_col=label_col, features=features, sampling_strategy=sampling_strategy,
                         random_state=random_state, id_cols=id_cols, weight_col=weight_col,
                         order_col=order_col, max_group_rows=max_group_rows)
        self.k_neighbors = k_neighbors
        self.recall_sample = recall_sample
        self.halo = halo
        self.probe = probe

    def get_params(self) -> dict:
        return {**super().get_params(), "k_neighbors": self.k_neighbors, "recall_sample": self.recall_sample,
                "halo": self.halo, "probe": self.probe}

    def _check_params(self):
        super()._check_params()
        k = self.k_neighbors
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k_neighbors must be an integer >= 1, got {k!r}")
        if self.max_group_rows < k + 1:
            raise ConfigError(f"max_group_rows ({self.max_group_rows}) must be at least k_neighbors + 1 "
                              f"({k + 1}); raise --max-group-rows or lower --k-neighbors")
        r = self.recall_sample
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r <= MAX_SAMPLE_ROWS:
            raise ConfigError(f"recall_sample must be an integer from 0 to {MAX_SAMPLE_ROWS:,} (rows whose exact "
                              f"neighbours are compared with their group's; the driver holds them), got {r!r}")
        check_halo(self.halo)
        check_probe(self.probe)

    # -- the counting pass also checks every feature value ----------------------------------------

    def _bad_exprs(self, spec) -> dict:
        """{column: expression true on a null, NaN or infinite value}."""
        if spec.vector:
            from pyspark.ml.functions import vector_to_array

            v = col(spec.vector)
            arr = vector_to_array(v)
            return {spec.vector: v.isNull() | F.exists(arr, lambda x: ~(F.abs(x) < float("inf")))}
        out = {}
        for c in spec.columns:
            v = col(c)
            out[c] = v.isNull() | ~(F.abs(v) < float("inf")) if isinstance(spec.types[c], (T.FloatType, T.DoubleType)) \
                else v.isNull()
        return out

    def _scan_aggs(self, spec):
        # One expression per row, not one per feature: |f0| + ... + |fn| < inf is false or null
        # exactly when some value is null, NaN or infinite (or the sum overflows, which the
        # per-column pass below then clears). Half the cost of per-column counters.
        if spec.vector:
            from pyspark.ml.functions import vector_to_array

            arr = vector_to_array(col(spec.vector))
            return [F.count_if(~self._bad_exprs(spec)[spec.vector]).alias("_ok"),
                    F.min(F.size(arr)).alias("_dmin"), F.max(F.size(arr)).alias("_dmax")]
        total = None
        for c in spec.columns:
            term = F.abs(col(c).cast("double"))
            total = term if total is None else total + term
        return [F.count_if(total < float("inf")).alias("_ok")]

    def _check_scan(self, rows, spec, df):
        if any(r["_ok"] != r["_n"] for r in rows):
            bad = df.agg(*[F.count_if(e).alias(f"_b{i}") for i, e in enumerate(self._bad_exprs(spec).values())]).first()
            names = [spec.vector] if spec.vector else spec.columns
            bad = {c: bad[f"_b{i}"] for i, c in enumerate(names) if bad[f"_b{i}"]}
            if bad:
                what = ", ".join(f"{c!r} ({n} row{'s' if n > 1 else ''})" for c, n in bad.items())
                raise InputError(
                    f"feature column(s) with null, NaN or infinite values: {what}; SMOTE needs finite "
                    f"numbers in every feature: drop or impute those rows first")
        if spec.vector:
            sizes = [(r["_dmin"], r["_dmax"]) for r in rows if r["_dmin"] is not None]
            lo = min(s[0] for s in sizes) if sizes else 0
            hi = max(s[1] for s in sizes) if sizes else 0
            if lo != hi:
                raise InputError(f"vector column {spec.vector!r} holds vectors of sizes {lo} to {hi}; "
                                 f"SMOTE needs one size for every row")
            if hi == 0:
                raise InputError(f"vector column {spec.vector!r} holds empty vectors; nothing to interpolate")
            spec.dim = int(hi)

    # -- resampling ----------------------------------------------------------------------------

    def _fit_resample(self, df, spec, counts, strategy):
        spark = df.sparkSession
        k = int(self.k_neighbors)
        seed = self.seed_
        targets = {c: n for c, n in strategy.items() if n > 0}
        for c in targets:
            n = counts[c]
            if n < k + 1:
                hint = (f"pass --k-neighbors {n - 1} or less" if n >= 2
                        else "use random over-sampling for it")
                raise InputError(
                    f"class {c!r} has {n} row{'s' if n != 1 else ''}, too few for SMOTE with "
                    f"k_neighbors={k} (it needs k_neighbors + 1 = {k + 1}); {hint}")
        labels = list(counts)
        idx = {c: i for i, c in enumerate(labels)}
        d = spec.width
        xcols = fresh_all([f"_x{i}" for i in range(d)], df.columns)  # the label is written beside them
        label = col(self.label_col)
        if spec.vector:
            from pyspark.ml.functions import vector_to_array

            arr = vector_to_array(col(spec.vector))
            feats = [arr[i].alias(x) for i, x in enumerate(xcols)]
        else:
            feats = [col(c).cast("double").alias(x) for c, x in zip(spec.columns, xcols)]
        extra = [col(self.order_col).alias("_o")] if self.order_col else []
        order = "_o" if self.order_col else None

        def project(frame):
            return frame.select(class_index(self.label_col, labels).cast("int").alias("_c"), *feats, *extra)

        self._cached = getattr(self, "_cached", [])
        plans, inputs, groups, recall = {}, [], {}, {}
        self.group_models_ = {}
        single = [c for c in targets if counts[c] <= self.max_group_rows]
        for c in targets:  # before any pass: a setting that would cut a class too finely is refused
            if c not in single:
                check_groups(c, counts[c], self.max_group_rows,
                             lambda m, n=counts[c]: cells_wanted(n, k, m, float(self.halo)))
        for c in single:
            plans[idx[c]] = {"key": class_key(c), "single": True, "alloc": {0: targets[c]}, "rows": {0: counts[c]}}
            groups[c] = {"groups": 1, "rows_min": counts[c], "rows_max": counts[c]}
            recall[c] = {"recall_at_k": 1.0, "k": k, "sample_rows": 0,
                         "note": "one group: every row's neighbours are its exact neighbours"}
        if single:
            one = project(df.where(label.isin(single)))
            # packed as a split class's rows are when both go to the kernel together (one schema);
            # alone, the features go as they are (no Python pass before the shuffle)
            inputs.append(_packed(one, xcols) if len(single) < len(targets) else
                          one.withColumn("_g", F.lit(0).cast("long")).withColumn("_h", F.lit(False)))
        for c in targets:
            if c in single:
                continue
            with self.timings_.step(spark, f"group class {c!r}"):
                cdf = project(df.where(label == F.lit(c))).persist(StorageLevel.MEMORY_AND_DISK)
                self._cached.append(cdf)
                # one bounded, hash-chosen sample gives the cuts and the recall sample
                sample = class_sample(cdf, xcols, counts[c], seed, max(int(self.recall_sample), sample_size(
                    cells_wanted(counts[c], k, self.max_group_rows, float(self.halo)))))
                # the recall is measured by the grouping's counting pass (no pass of its own)
                probe = RecallProbe(expand(sample, int(self.recall_sample)), k) if self.recall_sample else None
                try:
                    model, sizes, grouped = build_group_model(cdf, xcols, counts[c], k, self.max_group_rows,
                                                              float(self.halo), sample=sample, probe=probe,
                                                              order_col=order, probe_share=float(self.probe))
                except InputError as e:
                    raise InputError(f"class {c!r}: {e}") from None
                if grouped is not cdf:  # copies numbered (and cached) to be split: the plain copy goes
                    self._cached.append(grouped)
                    cdf.unpersist()
                    cdf = grouped
            self.group_models_[c] = model
            gids = sorted(sizes)
            probs = np.array([sizes[g] for g in gids], dtype=np.float64)
            rng = np.random.default_rng([seed, class_key(c)])
            drawn = rng.multinomial(targets[c], probs / probs.sum())
            alloc = {g: int(n) for g, n in zip(gids, drawn) if n > 0}
            plans[idx[c]] = {"key": class_key(c), "single": False, "alloc": alloc, "rows": dict(sizes),
                             "index": dict(model.index_rows),
                             "probe": {g: v for g, v in model.probe_cells.items() if g in alloc}}
            groups[c] = {"groups": len(sizes), "rows_min": min(sizes.values()), "rows_max": max(sizes.values()),
                         "axes_cuts": list(model.splits), "halo": float(self.halo),
                         "index_rows_max": max(model.index_rows.values()),
                         "halo_rows": int(sum(model.index_rows.values()) - sum(sizes.values())),
                         "probe": float(self.probe), "probed_groups": len(model.probe_cells),
                         "cells_max": max((len(C) for C, _ in model.probe_cells.values()), default=0)}
            if model.recall is not None:
                recall[c] = model.recall
            inputs.append(_assign_groups(cdf, xcols, model, set(alloc)))
        self.groups_ = groups
        self.neighbour_recall_ = recall
        originals = self._originals(df, spec)
        if not inputs:
            return originals
        kin = inputs[0]
        for other in inputs[1:]:
            kin = kin.unionByName(other)
        parts = plan_parts({(ci, g): (p["rows"][g], n, p.get("index", p["rows"])[g])
                            for ci, p in plans.items() for g, n in p["alloc"].items()},
                           d, spark.sparkContext.defaultParallelism)
        self.kernel_tasks_ = sum(parts.values())
        by_draws = {(ci, g) for (ci, g), n_parts in parts.items() if splits_draws(plans[ci]["rows"][g], n_parts)}
        big = {key: p for key, p in parts.items() if p > 1}
        if big:
            pexpr = F.lit(1)
            for (ci, g), p in big.items():
                pexpr = F.when((F.col("_c") == ci) & (F.col("_g") == g), F.lit(p)).otherwise(pexpr)
            kin = kin.withColumn("_p", F.explode(F.sequence(F.lit(0), pexpr - 1)))
        else:
            kin = kin.withColumn("_p", F.lit(0))
        schema = "_c int, " + ", ".join(f"{x} double" for x in xcols)
        fn = _make_kernel(plans, parts, by_draws, xcols, order, k, seed)
        new = kin.groupBy("_c", "_g", "_p").applyInArrow(fn, schema)
        lab_type = df.schema[self.label_col].dataType
        new = new.withColumn(self.label_col, label_case(lab_type, labels, "_c"))
        if spec.vector:
            from pyspark.ml.functions import array_to_vector

            new = new.select(array_to_vector(F.array(*xcols)).alias(spec.vector), col(self.label_col))
        else:
            new = new.select(*[col(x).alias(c) for x, c in zip(xcols, spec.columns)], col(self.label_col))
        return originals.unionByName(self._with_nulls(new, originals))


#: The kernel's input carries each row's features as one binary value (its float64s, packed):
#: one field per row instead of one per feature through the shuffle and the Arrow conversions on
#: either side of it (a class's rows travel there once per index that holds them).
PACKED = "_xb"


def pack_rows(X: np.ndarray) -> pa.Array:
    """A binary Arrow array of the rows of ``X`` (float64), each row's values as bytes, no copy
    beyond making ``X`` contiguous."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, width = X.shape[0], 8 * X.shape[1]
    offsets = np.arange(n + 1, dtype=np.int64) * width
    if offsets[-1] >= 2 ** 31:  # a binary array addresses its bytes with int32
        raise ValueError("pack_rows: more than 2 GiB in one batch")
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                  pa.py_buffer(X.reshape(-1).view(np.uint8))])


def unpack_rows(col, d: int) -> np.ndarray:
    """The (rows, d) float64 matrix of a binary column of :func:`pack_rows` (chunked or not; as
    large binary too, how Spark sends it with ``spark.sql.execution.arrow.useLargeVarTypes``)."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    parts = []
    for a in chunks:
        if len(a) == 0:
            continue
        width = np.int64 if pa.types.is_large_binary(a.type) else np.int32
        offs = np.frombuffer(a.buffers()[1], dtype=width)[a.offset:a.offset + len(a) + 1]
        if offs[-1] - offs[0] != 8 * d * len(a):
            raise ValueError(f"packed rows of {d} values expected")
        parts.append(np.frombuffer(a.buffers()[2], dtype=np.float64, count=d * len(a),
                                   offset=int(offs[0])).reshape(len(a), d))
    return np.concatenate(parts) if parts else np.empty((0, d))


def _pack_batches(b: pa.RecordBatch, X: np.ndarray, rows: np.ndarray, names: list, g, h) -> Iterator[pa.RecordBatch]:
    """Rows ``rows`` of batch ``b`` (columns ``names``) with their features ``X[rows]`` packed,
    their group ``g`` and halo flag ``h``: batches of at most ~64 MiB of features."""
    step = max(1, (64 << 20) // max(8 * X.shape[1], 1))
    for s in range(0, len(rows), step):
        take = pa.array(rows[s:s + step])
        yield pa.RecordBatch.from_arrays([b.column(c).take(take) for c in names]
                                         + [pack_rows(X[rows[s:s + step]]), pa.array(g[s:s + step]),
                                            pa.array(h[s:s + step])], names=names + [PACKED, "_g", "_h"])


def _packed_schema(cdf, xcols):
    fields = [f for f in cdf.schema.fields if f.name != DUP_COL and f.name not in set(xcols)]
    return [f.name for f in fields], T.StructType(
        fields + [T.StructField(PACKED, T.BinaryType()), T.StructField("_g", T.LongType()),
                  T.StructField("_h", T.BooleanType())])


def _packed(frame, xcols):
    """The rows of one-group classes as the kernel takes them: features packed, group 0, no halo."""
    names, schema = _packed_schema(frame, xcols)

    def part(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            n = b.num_rows
            yield from _pack_batches(b, arrow_matrix(b, xcols), np.arange(n), names, np.zeros(n, np.int64),
                                     np.zeros(n, bool))

    return frame.mapInArrow(part, schema)


def _assign_groups(cdf, xcols, model, keep: set):
    """``cdf`` with its group id ``_g`` and ``_h`` (a halo row of that group's index), features
    packed; a row is there once per index it belongs to. Rows of groups that make no new row are
    dropped."""
    keep = np.array(sorted(keep), dtype=np.int64)
    names, schema = _packed_schema(cdf, xcols)

    def part(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:  # Arrow in and out, no pandas
            X = arrow_matrix(b, xcols)
            r, g, h = model.members(X, dup_of(model, b))
            m = np.isin(g, keep)
            yield from _pack_batches(b, X, r[m], names, g[m].astype(np.int64), h[m])

    return cdf.mapInArrow(part, schema)


def _make_kernel(plans, parts, by_draws, xcols, order, k, seed):
    """The applyInArrow function: one (class, group, part) -> its new rows, streamed as Arrow
    batches. Arrow in and out, no pandas frame of the group or of its new rows (the frames'
    conversions were ~10% of the Python workers' time at 10M rows)."""
    names = ["_c"] + list(xcols)

    def kernel(key: Tuple[pa.Scalar, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        ci, g, p = (int(v.as_py()) for v in key)
        plan = plans[ci]
        n_new = plan["alloc"].get(g, 0)
        got = [b for b in batches if b.num_rows]
        if n_new == 0 or not got:
            return
        tbl = pa.Table.from_batches(got)
        del got
        # base rows first, then the halo (each in canonical order): only base rows are drawn
        halo = tbl.column("_h").to_numpy(zero_copy_only=False).astype(bool, copy=False)
        n_base = int((~halo).sum())
        X = unpack_rows(tbl.column(PACKED), len(xcols)) if PACKED in tbl.column_names else arrow_matrix(tbl, xcols)
        ov = tbl.column(order).to_numpy(zero_copy_only=False) if order else None
        parts_xo = []
        for sel in (np.flatnonzero(~halo), np.flatnonzero(halo)):
            keys = ([ov[sel]] if order else []) + [X[sel, j] for j in range(X.shape[1])]
            o = lex_order(keys)
            if o is None:  # order column of text or with nulls: pandas' sort
                sub = pd.DataFrame(X[sel], columns=list(xcols))
                sub.insert(0, order, tbl.column(order).take(pa.array(sel)).to_pandas())
                o = canonical_order(sub.assign(_pos=np.arange(len(sel))), xcols, order)["_pos"].to_numpy()
            parts_xo.append(X[sel[o]])
        X = np.concatenate(parts_xo)
        del tbl, parts_xo, ov
        rs = _kernel.group_random_state(seed, plan["key"], None if plan["single"] else g)
        for X_new in generate_chunks(X, n_new, k, rs, p, parts[(ci, g)], parity=plan["single"], n_base=n_base,
                                     by_draws=(ci, g) in by_draws, probe=plan.get("probe", {}).get(g)):
            cols = np.ascontiguousarray(X_new.T)  # one copy; each feature's values then go as they are
            yield pa.RecordBatch.from_arrays([pa.array(np.full(len(X_new), ci, np.int32))]
                                             + [pa.array(c) for c in cols], names=names)

    return kernel
