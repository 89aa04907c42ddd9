"""What every sampler shares: parameters, input checks, one counting pass, strategy resolution,
and the assembly of the output (original rows unchanged + new rows flagged ``is_synthetic``).

The order of steps is fixed here, as in imbalanced-learn's ``BaseSampler``: the constructor only
stores arguments; ``fit_resample`` validates, resolves ``sampling_strategy`` into
``sampling_strategy_`` and calls the subclass's ``_fit_resample``.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..distribution import MAX_CLASSES, label_sort_key
from ..errors import ConfigError, InputError, MissingColumnError
from ..names import col
from ..progress import Timings
from .strategy import check_sampling_strategy, normalize_strategy

log = logging.getLogger("imbal_spark")

SYNTHETIC_COL = "is_synthetic"
MAX_SEED = 2**32 - 1
#: Most groups (SMOTE) or buckets (random over-sampling) one class is cut into: each is a row of
#: the plan the driver holds and ships to every task, a counter of the grouping passes and a
#: branch of the group expressions, so their number must not grow with the rows.
MAX_GROUPS = 1 << 16


def check_groups(label, rows: int, max_group_rows: int, groups_for) -> None:
    """ConfigError naming the class when ``groups_for(max_group_rows)`` (groups of a class of
    ``rows`` rows; non-increasing in its argument) exceeds :data:`MAX_GROUPS`, with the smallest
    ``max_group_rows`` that fits."""
    n = groups_for(max_group_rows)
    if n <= MAX_GROUPS:
        return
    lo, hi = max_group_rows, max(max_group_rows, rows)
    while lo < hi:  # the smallest setting that cuts at most MAX_GROUPS groups
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if groups_for(mid) <= MAX_GROUPS else (mid + 1, hi)
    raise ConfigError(f"class {label!r} has {rows:,} rows: max_group_rows={max_group_rows:,} would cut it into "
                      f"{n:,} groups, more than {MAX_GROUPS:,}; raise --max-group-rows to at least {lo:,}")
NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


def is_vector(dt) -> bool:
    return isinstance(dt, T.UserDefinedType) and dt.simpleString() == "vector"


def is_numeric(dt) -> bool:
    return isinstance(dt, NUMERIC)


def class_key(label) -> int:
    """A stable 32-bit number for a class label (seeds derive from it, never from task order)."""
    if isinstance(label, (bool, np.bool_)):
        s = f"b:{bool(label)}"
    elif isinstance(label, (int, np.integer)):
        s = f"i:{int(label)}"
    elif isinstance(label, (float, np.floating)):
        s = f"f:{float(label)!r}"
    else:
        s = f"s:{label}"
    return zlib.crc32(s.encode())


@dataclass
class FeatureSpec:
    """Which columns are features. ``vector`` names one MLlib vector column (then ``dim`` is its
    size), otherwise ``columns`` lists feature columns in order."""

    columns: list
    vector: str | None = None
    dim: int | None = None
    types: dict = field(default_factory=dict)  # column -> Spark type

    @property
    def width(self) -> int:
        return self.dim if self.vector else len(self.columns)

    def describe(self):
        return {"vector": self.vector, "size": self.dim} if self.vector else list(self.columns)


class BaseSampler:
    """Parameters shared by every sampler; see :class:`~imbal_spark.sampling.SMOTE`."""

    _sampling_type: str = ""
    _method: str = ""
    # SMOTE interpolates, so its features must be numbers; random samplers only copy rows and
    # accept any explicitly listed column (the default is the numeric columns for every sampler)
    _numeric_features = True

    def __init__(self, label_col="label", features=None, sampling_strategy="auto", random_state=42,
                 id_cols=(), weight_col="weight", order_col=None, max_group_rows=100_000):
        self.label_col = label_col
        self.features = features
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.id_cols = tuple(id_cols or ())
        self.weight_col = weight_col
        self.order_col = order_col
        self.max_group_rows = max_group_rows

    # -- parameters ---------------------------------------------------------------------------

    def get_params(self) -> dict:
        s = self.sampling_strategy
        return {
            "label_col": self.label_col,
            "features": self.features if not isinstance(self.features, tuple) else list(self.features),
            "sampling_strategy": s if isinstance(s, (str, int, float, dict)) else getattr(s, "__name__", repr(s)),
            "random_state": self.random_state,
            "id_cols": list(self.id_cols),
            "weight_col": self.weight_col,
            "order_col": self.order_col,
            "max_group_rows": self.max_group_rows,
        }

    def _check_params(self):
        rs = self.random_state
        if rs is not None and (isinstance(rs, bool) or not isinstance(rs, (int, np.integer)) or not 0 <= rs <= MAX_SEED):
            raise ConfigError(f"random_state must be an integer in [0, {MAX_SEED}] or None, got {rs!r}")
        m = self.max_group_rows
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 2:
            raise ConfigError(f"max_group_rows must be an integer >= 2, got {m!r}")

    def _seed(self) -> int:
        if self.random_state is None:
            # No seed asked: draw one now and record it in summary_, so the run can be repeated.
            return int(np.random.SeedSequence().entropy % (MAX_SEED + 1))
        return int(self.random_state)

    # -- the fixed order of steps ---------------------------------------------------------------

    def fit_resample(self, df: DataFrame) -> DataFrame:
        """Resample ``df``: the original rows unchanged plus new rows (``is_synthetic`` true) for
        over-samplers, the kept rows for under-samplers. Only small aggregates reach the driver."""
        if not isinstance(df, DataFrame):
            raise InputError(f"fit_resample needs a Spark DataFrame, got {type(df).__name__}")
        self._check_params()
        self.timings_ = Timings()
        spark = df.sparkSession
        self.seed_ = self._seed()
        self._check_label(df)
        spec = self._resolve_features(df)
        with self.timings_.step(spark, "count classes and check values"):
            counts = self._scan(df, spec)
        if not counts:
            raise InputError("the input has no rows; nothing to resample")
        strategy = normalize_strategy(self.sampling_strategy, list(counts))
        self.sampling_strategy_ = check_sampling_strategy(strategy, counts, self._sampling_type)
        self.counts_ = counts
        self.feature_spec_ = spec
        out = self._fit_resample(df, spec, counts, self.sampling_strategy_)
        self.summary_ = self._summary()
        return out

    def _fit_resample(self, df, spec, counts, strategy):  # pragma: no cover - abstract
        raise NotImplementedError

    def counts_after(self) -> dict:
        if self._sampling_type == "over-sampling":
            return {c: n + self.sampling_strategy_.get(c, 0) for c, n in self.counts_.items()}
        return {c: self.sampling_strategy_.get(c, n) for c, n in self.counts_.items()}

    def _summary(self) -> dict:
        return {
            "method": self._method,
            "params": {**self.get_params(), "seed_used": self.seed_},
            "features": self.feature_spec_.describe(),
            "sampling_strategy_": dict(self.sampling_strategy_),
            "counts_before": dict(self.counts_),
            "counts_after": self.counts_after(),
            "groups": getattr(self, "groups_", {}),
            "neighbour_recall": getattr(self, "neighbour_recall_", {}),
            "timings": dict(self.timings_),
        }

    def release(self) -> None:
        """Unpersist what ``fit_resample`` cached (call after the output is written)."""
        for d in getattr(self, "_cached", []):
            d.unpersist()
        self._cached = []

    # -- validation ----------------------------------------------------------------------------

    def _excluded(self) -> set:
        ex = {self.label_col, SYNTHETIC_COL, *self.id_cols}
        if self.weight_col:
            ex.add(self.weight_col)
        if self.order_col:
            ex.add(self.order_col)
        return ex

    def _check_label(self, df):
        if self.label_col not in df.columns:
            raise MissingColumnError(self.label_col, df.columns, "label column")
        dt = df.schema[self.label_col].dataType
        if isinstance(dt, (T.ArrayType, T.MapType, T.StructType, T.BinaryType)) or is_vector(dt):
            raise InputError(f"label column {self.label_col!r} has type {dt.simpleString()}; "
                             f"a label must be an integer or a string")
        for c in self.id_cols:
            if c not in df.columns:
                raise MissingColumnError(c, df.columns, "id column")
        if self.order_col is not None and self.order_col not in df.columns:
            raise MissingColumnError(self.order_col, df.columns, "order column")
        if SYNTHETIC_COL in df.columns and not isinstance(df.schema[SYNTHETIC_COL].dataType, T.BooleanType):
            raise InputError(f"column {SYNTHETIC_COL!r} exists but is {df.schema[SYNTHETIC_COL].dataType.simpleString()}, "
                             f"not boolean; rename it, the samplers write that column")

    def _resolve_features(self, df) -> FeatureSpec:
        schema = {f.name: f.dataType for f in df.schema.fields}
        feats = self.features
        if isinstance(feats, str):
            feats = [s.strip() for s in feats.split(",") if s.strip()]
        excluded = self._excluded()
        if feats is None:
            cols = [c for c in df.columns if c not in excluded and is_numeric(schema[c])]
            vecs = [c for c in df.columns if c not in excluded and is_vector(schema[c])]
            if not cols and len(vecs) == 1:
                return FeatureSpec([], vector=vecs[0], types={vecs[0]: schema[vecs[0]]})
            if not cols:
                raise InputError(
                    f"no numeric feature columns found (columns: {', '.join(df.columns)}); "
                    f"pass --features c1,c2,... or a vector column")
            return FeatureSpec(cols, types={c: schema[c] for c in cols})
        feats = list(feats)
        if not feats:
            raise ConfigError("features is empty; pass at least one feature column or leave it unset")
        for c in feats:
            if c not in schema:
                raise MissingColumnError(c, df.columns, "feature column")
        if len(set(feats)) != len(feats):
            dup = sorted({c for c in feats if feats.count(c) > 1})
            raise ConfigError(f"feature column(s) {', '.join(map(repr, dup))} listed twice")
        if self.label_col in feats:
            raise ConfigError(f"the label column {self.label_col!r} cannot also be a feature")
        vecs = [c for c in feats if is_vector(schema[c])]
        if vecs:
            if len(feats) != 1:
                raise InputError(f"vector column {vecs[0]!r} must be the only feature; "
                                 f"give either one vector column or numeric columns")
            return FeatureSpec([], vector=vecs[0], types={vecs[0]: schema[vecs[0]]})
        if self._numeric_features:
            bad = [c for c in feats if not is_numeric(schema[c])]
            if bad:
                c = bad[0]
                raise InputError(
                    f"feature column {c!r} has type {schema[c].simpleString()}, not a number; "
                    f"{self._method} interpolates numeric features: drop it from --features or encode it")
        return FeatureSpec(feats, types={c: schema[c] for c in feats})

    def _scan(self, df, spec) -> dict:
        """One aggregation: rows per class (and, for SMOTE, bad feature values). Returns the
        sorted {label: count}; raises on null labels."""
        lab = col(self.label_col)
        aggs = [F.count(F.lit(1)).alias("_n")] + self._scan_aggs(spec)
        rows = df.groupBy(lab.alias("_label")).agg(*aggs).limit(MAX_CLASSES + 2).collect()
        if sum(r["_label"] is not None for r in rows) > MAX_CLASSES:  # a null label is no class
            raise InputError(f"label column {self.label_col!r} has more than {MAX_CLASSES} distinct "
                             f"values; is it really a class label? Pass the right --label-col")
        nulls = sum(r["_n"] for r in rows if r["_label"] is None)
        if nulls:
            raise InputError(f"label column {self.label_col!r} has {nulls} null value(s); drop or "
                             f"label those rows before resampling")
        if isinstance(df.schema[self.label_col].dataType, (T.FloatType, T.DoubleType)):
            nan = sum(r["_n"] for r in rows if r["_label"] != r["_label"])
            if nan:
                raise InputError(f"label column {self.label_col!r} has {nan} NaN value(s); drop or "
                                 f"label those rows before resampling")
        self._check_scan(rows, spec, df)
        counts = {r["_label"]: r["_n"] for r in rows}
        return dict(sorted(counts.items(), key=lambda kv: label_sort_key(kv[0])))

    def _scan_aggs(self, spec) -> list:
        return []

    def _check_scan(self, rows, spec, df) -> None:
        pass

    # -- output ----------------------------------------------------------------------------------

    def _originals(self, df, spec) -> DataFrame:
        """The input rows, unchanged, flagged ``is_synthetic = false`` (an existing flag is kept)."""
        if SYNTHETIC_COL in df.columns:
            return df
        return df.withColumn(SYNTHETIC_COL, F.lit(False))

    def _with_nulls(self, new, template: DataFrame) -> DataFrame:
        """Give ``new`` (feature/label columns) every other column of ``template`` as typed nulls,
        in ``template``'s column order, with ``is_synthetic = true``."""
        have = set(new.columns)
        cols = []
        for f in template.schema.fields:
            if f.name == SYNTHETIC_COL:
                cols.append(F.lit(True).alias(SYNTHETIC_COL))
            elif f.name in have:
                cols.append(col(f.name).cast(f.dataType).alias(f.name) if not is_vector(f.dataType)
                            else col(f.name))
            else:
                cols.append(F.lit(None).cast(f.dataType).alias(f.name))
        return new.select(*cols)


def label_case(label_col_type, labels: list, index_col: str):
    """A Spark expression mapping a class index column back to its label literal."""
    expr = None
    for i, lab in enumerate(labels):
        lit = F.lit(lab).cast(label_col_type)
        expr = F.when(col(index_col) == i, lit) if expr is None else expr.when(col(index_col) == i, lit)
    return expr


def class_index(label_col: str, labels: list):
    """A Spark expression giving each row the index of its class in ``labels`` (sorted)."""
    expr = None
    for i, lab in enumerate(labels):
        cond = col(label_col) == F.lit(lab)
        expr = F.when(cond, F.lit(i)) if expr is None else expr.when(cond, F.lit(i))
    return expr
