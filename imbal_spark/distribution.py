"""Class distribution computed by Spark aggregations: only one row per class (or per group
and class) ever reaches the driver, never the data."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .names import col
from .errors import InputError, MissingColumnError

#: More distinct values than this means the column is not a class label.
MAX_CLASSES = 1000
#: Columns distribution_by adds beside the group and label columns.
BY_OUTPUT_COLUMNS = ("count", "group_labelled_rows", "group_null_labels", "fraction", "imbalance_ratio",
                     "is_majority", "is_minority")


def label_sort_key(v):
    """Numbers before strings, each in natural order (imbalanced-learn sorts labels); a decimal
    label column's values (``Decimal``) are numbers too."""
    from decimal import Decimal

    return (0, v, "") if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) else (1, 0, str(v))


@dataclass
class ClassDistribution:
    label_col: str
    total_rows: int
    null_labels: int
    counts: dict  # label -> count, sorted by label
    by: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def labelled_rows(self) -> int:
        return sum(self.counts.values())

    @property
    def majority(self):
        return max(self.counts, key=lambda k: self.counts[k]) if self.counts else None

    @property
    def minority(self):
        return min(self.counts, key=lambda k: self.counts[k]) if self.counts else None

    @property
    def imbalance_ratio(self) -> float | None:
        if not self.counts:
            return None
        return self.counts[self.majority] / self.counts[self.minority]

    def to_dict(self) -> dict:
        n = self.labelled_rows
        return {
            "label_col": self.label_col,
            "total_rows": self.total_rows,
            "labelled_rows": n,
            "null_labels": self.null_labels,
            "n_classes": len(self.counts),
            "classes": [
                {"label": k, "count": c, "fraction": c / n if n else None}
                for k, c in self.counts.items()
            ],
            "majority_class": self.majority,
            "minority_class": self.minority,
            "imbalance_ratio": self.imbalance_ratio,
            **({"by": self.by} if self.by else {}),
            **self.extra,
        }

    def table(self) -> str:
        """A readable fixed-width table for the console."""
        n = self.labelled_rows
        w = max([len("class")] + [len(str(k)) for k in self.counts])
        lines = [f"{'class':<{w}}  {'count':>12}  {'fraction':>8}", "-" * (w + 24)]
        for k, c in self.counts.items():
            mark = "  (majority)" if k == self.majority else "  (minority)" if k == self.minority else ""
            lines.append(f"{str(k):<{w}}  {c:>12,}  {c / n:>8.4f}{mark}")
        lines.append("-" * (w + 24))
        lines.append(f"{'total':<{w}}  {n:>12,}")
        if self.null_labels:
            lines.append(f"null labels: {self.null_labels:,} (not counted above)")
        if self.counts:
            lines.append(f"imbalance ratio (majority/minority): {self.imbalance_ratio:.2f}")
        return "\n".join(lines)


def _check_label(df: DataFrame, label_col: str):
    if label_col not in df.columns:
        raise MissingColumnError(label_col, df.columns, "label column")
    dtype = dict(df.dtypes)[label_col]
    if dtype.startswith(("array", "map", "struct", "binary")):
        raise InputError(f"label column {label_col!r} has type {dtype}; a label must be an integer or a string")


def class_counts(df: DataFrame, label_col: str) -> tuple[dict, int]:
    """(sorted {label: count} without nulls, number of null labels) with one aggregation."""
    _check_label(df, label_col)
    rows = df.groupBy(col(label_col)).count().limit(MAX_CLASSES + 2).collect()  # one row per class
    nulls = 0
    counts = {}
    for r in rows:
        if r[0] is None:
            nulls = r[1]
        else:
            counts[r[0]] = r[1]
    if len(counts) > MAX_CLASSES:
        raise InputError(
            f"label column {label_col!r} has more than {MAX_CLASSES} distinct values; "
            f"is it really a class label? Pass the right --label-col"
        )
    counts = dict(sorted(counts.items(), key=lambda kv: label_sort_key(kv[0])))
    return counts, nulls


def class_distribution(df: DataFrame, label_col: str) -> ClassDistribution:
    counts, nulls = class_counts(df, label_col)
    total = sum(counts.values()) + nulls
    return ClassDistribution(label_col=label_col, total_rows=total, null_labels=nulls, counts=counts)


def distribution_by(df: DataFrame, label_col: str, by: str) -> DataFrame:
    """Per group of ``by`` and class: count, fraction of the group's labelled rows, the
    group's imbalance ratio and majority/minority flags. Returned as a DataFrame (one row per
    group and class) to be written as Parquet, never collected: a date column may have
    thousands of groups."""
    _check_label(df, label_col)
    if by not in df.columns:
        raise MissingColumnError(by, df.columns, "--by column")
    if by == label_col:
        raise InputError(f"--by {by!r} is the label column; group by another column (the plain "
                         f"distribution already counts each class)")
    taken = [c for c in (by, label_col) if c in BY_OUTPUT_COLUMNS]
    if taken:
        raise InputError(f"column {taken[0]!r} has the name of a column of the --by output "
                         f"({', '.join(BY_OUTPUT_COLUMNS)}); rename it first")
    counts = df.groupBy(col(by), col(label_col)).count()
    labelled = F.when(col(label_col).isNotNull(), F.col("count"))
    w = Window.partitionBy(col(by))
    out = (
        counts.withColumn("group_labelled_rows", F.sum(labelled).over(w))
        .withColumn("group_null_labels", F.coalesce(F.sum(F.when(col(label_col).isNull(), F.col("count"))).over(w), F.lit(0)))
        .withColumn("_max", F.max(labelled).over(w))
        .withColumn("_min", F.min(labelled).over(w))
        .where(col(label_col).isNotNull())
        .withColumn("fraction", F.col("count") / F.col("group_labelled_rows"))
        .withColumn("imbalance_ratio", F.col("_max") / F.col("_min"))
        .withColumn("is_majority", F.col("count") == F.col("_max"))
        .withColumn("is_minority", F.col("count") == F.col("_min"))
        .drop("_max", "_min")
        .orderBy(col(by), col(label_col))
    )
    return out
