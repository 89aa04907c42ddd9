"""The strategy comparison: one split, each strategy trained and measured on the same test rows.

A strategy is ``none``, ``class_weight``, a sampler (``smote``, ``random_over``,
``random_under``) or a sampler followed by class weights (``smote+class_weight``: weights
computed on the resampled counts, as ``class_weight`` in an imbalanced-learn pipeline would).
Samplers only ever touch the training rows.

**Decision threshold** (binary problems, ``validation_size > 0``): like scikit-learn's
``TunedThresholdClassifierCV(cv=validation_size, refit=True)``, a stratified validation split is
held out of the training rows, the strategy is trained on the rest, and the threshold that
maximises F1 of the positive class on the validation rows (or, with ``threshold_recall``, the
highest one reaching that recall) is chosen; the reported model is the one trained on all
training rows (so the default-threshold figures stay comparable), and its test metrics are also
given at the chosen threshold. The positive class is the minority class of the training data.

    from imbal_spark.compare import run_comparison
    report = run_comparison(spark, train_df, test_df, {"label_col": "label", "strategies": [...]})
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame

from . import metrics as M
from .config import SCHEMA
from .distribution import class_counts, label_sort_key
from .errors import ConfigError, InputError, MissingColumnError
from .names import col, cols, fresh_all
from .progress import Timings
from .split import split_by_counts, split_counts, stratified_split
from .training import canonical_model, check_feature_values, fit, resolve_features
from .weights import add_class_weights, check_weight_support, weight_sum

log = logging.getLogger("imbal_spark")

SAMPLERS = ("smote", "random_over", "random_under")
DEFAULT_STRATEGIES = ["none", "class_weight", "smote", "random_under", "smote+class_weight"]
PRED = "prediction_label"
SCORE = "score"


@dataclass(frozen=True)
class Strategy:
    name: str
    sampler: str | None
    weighted: bool


def parse_strategy(name: str) -> Strategy:
    key = str(name).strip().lower()
    parts = [p.strip() for p in key.split("+")]
    sampler, weighted = None, False
    for p in parts:
        if p == "class_weight" and not weighted:
            weighted = True
        elif p in SAMPLERS and sampler is None:
            sampler = p
        elif p == "none" and len(parts) == 1:
            pass
        else:
            raise ConfigError(
                f"unknown strategy {name!r}; use none, class_weight, {', '.join(SAMPLERS)} or "
                f"'<sampler>+class_weight' (e.g. smote+class_weight)"
            )
    if weighted and sampler and parts[0] == "class_weight":
        raise ConfigError(f"strategy {name!r}: write the sampler first ({sampler}+class_weight); weights are computed after resampling")
    return Strategy(key, sampler, weighted)


def parse_strategies(names) -> list:
    names = list(names or DEFAULT_STRATEGIES)
    out = [parse_strategy(n) for n in names]
    seen = set()
    for s in out:
        if s.name in seen:
            raise ConfigError(f"strategy {s.name!r} is listed twice")
        seen.add(s.name)
    return out


def options(cfg: dict | None) -> dict:
    """Every SCHEMA key with its default, overridden by ``cfg``."""
    out = {k: key.default for k, key in SCHEMA.items()}
    out.update({k: v for k, v in (cfg or {}).items() if v is not None})
    return out


def check_options(cfg: dict) -> None:
    """Checks that need no data: run them before starting expensive work."""
    canonical_model(cfg["model"])
    strategies = parse_strategies(cfg["strategies"])
    for s in strategies:
        check_weight_support(canonical_model(cfg["model"]), s.weighted)
    for k in ("test_size", "validation_size"):
        v = cfg.get(k)
        if v is not None and not (0 <= v < 1):
            raise ConfigError(f"{k} must be a fraction in [0, 1), got {v}")
    r = cfg.get("threshold_recall")
    if r is not None and not (0 < r <= 1):
        raise ConfigError(f"threshold_recall must be in (0, 1], got {r}")


def split_input(df: DataFrame, cfg: dict):
    """``(train, test, info)`` from one data set: the stratified split of :mod:`imbal_spark.split`."""
    cfg = options(cfg)
    if not cfg["test_size"]:
        raise ConfigError("test_size must be > 0 to split one input; or give --train and --test")
    train, test, info = stratified_split(df, cfg["label_col"], cfg["test_size"], cfg["seed"])
    _every_class_on_both_sides(info["train_counts"], info["test_counts"], "test_size", cfg["test_size"],
                               ("training", "test"))
    info = {"split": "stratified", "test_size": cfg["test_size"], "seed": cfg["seed"], **info}
    return train, test, info


def _every_class_on_both_sides(a: dict, b: dict, what: str, size, sides) -> None:
    """Refuse a split (scikit-learn's counts, which may round a small class to nothing on one
    side) that leaves a class with no rows on a side: naming the setting that did it."""
    for c in sorted(set(a) | set(b), key=label_sort_key):
        for counts, side in zip((a, b), sides):
            if not counts.get(c):
                n = a.get(c, 0) + b.get(c, 0)
                raise InputError(
                    f"{what}={size} leaves class {c!r} ({n} row{'s' if n != 1 else ''}) with no rows in "
                    f"the {side} part, and the comparison needs every class on both sides; change "
                    f"{what} or add rows of that class")


def _labels_str(d: dict) -> dict:
    return {str(k): v for k, v in d.items()}


def make_sampler(method: str, cfg: dict, numeric: list):
    """A sampler of :mod:`imbal_spark.sampling` built from the config keys it accepts."""
    from .sampling import SAMPLERS as CLASSES

    cls = CLASSES[method]
    args = {
        "label_col": cfg["label_col"], "features": list(numeric),
        "sampling_strategy": cfg["sampling_strategy"], "k_neighbors": cfg["k_neighbors"],
        "random_state": cfg["seed"], "max_group_rows": cfg["max_group_rows"],
        "id_cols": list(cfg["id_cols"] or []), "order_col": cfg["order_col"],
        "weight_col": cfg["weight_col"], "recall_sample": cfg["recall_sample"],
        "halo": cfg.get("halo", 0.6), "probe": cfg.get("probe", 0.15),
    }
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in args.items() if k in accepted})


class _Context:
    def __init__(self, spark, cfg, classes, pos_label, numeric, categorical, keep_cols, timings, resampled=None):
        self.spark, self.cfg, self.classes, self.pos_label = spark, cfg, classes, pos_label
        self.numeric, self.categorical, self.keep_cols, self.t = numeric, categorical, keep_cols, timings
        self.resampled = resampled or {}


#: Rows per partition for training. Iterative learners (LR: one pass per iteration, hundreds
#: of iterations) pay a task per partition per pass, so a 200-partition shuffle output of a
#: small data set would cost far more in scheduling than in computing.
TRAIN_PARTITION_ROWS = 500_000


def right_size(spark, df: DataFrame, rows: int) -> DataFrame:
    """``df`` coalesced (no shuffle) to ``max(cores, rows / TRAIN_PARTITION_ROWS)`` partitions."""
    want = max(spark.sparkContext.defaultParallelism, -(-rows // TRAIN_PARTITION_ROWS))
    have = df.rdd.getNumPartitions()
    return df.coalesce(want) if have > want else df


def train_strategy(ctx: _Context, strategy: Strategy, train: DataFrame, counts: dict, tag: str = ""):
    """Resample / weight ``train`` as ``strategy`` says and fit the model.

    Returns ``(FittedModel, info)``; info has the training class counts and sampler summary."""
    cfg, label = ctx.cfg, ctx.cfg["label_col"]
    info = {}
    data = train.select(*cols(ctx.keep_cols))
    persisted = None
    sampler = None
    if strategy.sampler and not tag and strategy.sampler in ctx.resampled:
        # the caller already resampled these training rows with these settings (and wrote them)
        done, summary = ctx.resampled[strategy.sampler]
        with ctx.t.step(ctx.spark, f"{strategy.name}{tag}: read resampled rows"):
            persisted = data = done.select(*cols(ctx.keep_cols)).persist(StorageLevel.MEMORY_AND_DISK)
            counts, _ = class_counts(data, label)
            info["sampler"] = summary
    elif strategy.sampler:
        with ctx.t.step(ctx.spark, f"{strategy.name}{tag}: resample"):
            sampler = make_sampler(strategy.sampler, cfg, ctx.numeric)
            data = sampler.fit_resample(data)
            persisted = data = data.persist(StorageLevel.MEMORY_AND_DISK)
            counts, _ = class_counts(data, label)  # one aggregation; also materialises the cache
            info["sampler"] = getattr(sampler, "summary_", None)
    info["train_counts"] = dict(counts)
    data = right_size(ctx.spark, data, sum(counts.values()))
    weight_col = None
    if strategy.weighted:
        data, weights = add_class_weights(data, label, cfg["class_weight"] or "balanced", cfg["weight_col"], counts)
        weight_col = cfg["weight_col"]
        info["class_weights"] = weights
        wsum = weight_sum(weights, counts)
    else:
        wsum = float(sum(counts.values()))
    try:
        with ctx.t.step(ctx.spark, f"{strategy.name}{tag}: fit {cfg['model']}"):
            model = fit(data, label, ctx.classes, cfg["model"], cfg["model_params"], numeric=ctx.numeric,
                        categorical=ctx.categorical, scale=cfg["scale"], weight_col=weight_col,
                        weight_sum=wsum, seed=cfg["seed"], pos_label=ctx.pos_label)
    finally:
        if persisted is not None:
            persisted.unpersist()
        if sampler is not None and hasattr(sampler, "release"):
            sampler.release()
    missing = [c for c in ctx.classes if not counts.get(c)]
    if missing:  # pragma: no cover - samplers never remove a class entirely
        raise InputError(f"strategy {strategy.name!r} left no training rows of class(es) {missing}")
    return model, info


def _str_labels(m: dict) -> dict:
    """Metrics with class labels as strings (JSON keys must be strings; labels may be ints)."""
    m = dict(m)
    m["labels"] = [str(c) for c in m["labels"]]
    if "binary" in m:
        m["binary"] = {**m["binary"], "pos_label": str(m["binary"]["pos_label"])}
    return m


class _Prepared:
    """Checked inputs shared by every strategy: counts, classes, features, validation split."""

    def __init__(self, spark, train_df, test_df, cfg, t, resampled=None):
        self.cfg, self.t = cfg, t
        label = self.label = cfg["label_col"]
        for name, df in (("training", train_df), ("test", test_df)):
            if label not in df.columns:
                raise MissingColumnError(label, df.columns, f"label column (in the {name} data)")
        # both sides are read once per strategy (and by several aggregations): cache them
        self.train = train_df.persist(StorageLevel.MEMORY_AND_DISK)
        self.test = test_df.persist(StorageLevel.MEMORY_AND_DISK)
        self.cached = [self.train, self.test]
        with t.step(spark, "class counts"):
            self.train_counts, train_nulls = class_counts(self.train, label)
            self.test_counts, test_nulls = class_counts(self.test, label)
        for name, nulls in (("training", train_nulls), ("test", test_nulls)):
            if nulls:
                raise InputError(f"label column {label!r} has {nulls} null value(s) in the {name} data; drop or fill them")
        if not self.train_counts:
            raise InputError("the training data has no rows")
        if not self.test_counts:
            raise InputError("the test data has no rows")
        unseen = [c for c in self.test_counts if c not in self.train_counts]
        if unseen:
            raise InputError(
                f"label {unseen[0]!r} of column {label!r} is in the test data but never in the "
                f"training data (training classes: {', '.join(map(str, self.train_counts))}); a model "
                f"cannot predict it. Split the data so that every class is in both"
            )
        absent = [c for c in self.train_counts if c not in self.test_counts]
        if absent:
            raise InputError(
                f"class {absent[0]!r} of column {label!r} has no rows in the test data, so its "
                f"recall and every imbalance metric would be undefined; give a test set with "
                f"every class (a stratified split does this)"
            )
        classes = self.classes = sorted(self.train_counts, key=label_sort_key)
        if len(classes) < 2:
            raise InputError(f"the training data has only one class ({classes[0]!r}) in {label!r}; a classifier needs two")
        self.binary = len(classes) == 2
        # the minority class is the positive one (ties: the larger label, scikit-learn's pos_label=1)
        self.pos_label = min(reversed(classes), key=lambda c: self.train_counts[c]) if self.binary else None
        self.neg_label = [c for c in classes if c != self.pos_label][0] if self.binary else None
        exclude = [cfg["order_col"]] if cfg["order_col"] else []
        numeric, categorical = resolve_features(self.train, label, cfg["features"], cfg["categorical"],
                                                cfg["id_cols"] or [], cfg["weight_col"], exclude)
        missing = [c for c in numeric + categorical if c not in self.test.columns]
        if missing:
            raise MissingColumnError(missing[0], self.test.columns, "feature column (in the test data)")
        with t.step(spark, "check feature values"):
            for name, df in (("training", self.train), ("test", self.test)):
                check_feature_values(df, numeric, name)
        keep = [label, *numeric, *categorical]
        for c in (cfg["id_cols"] or []) + exclude:
            if c in self.train.columns and c not in keep:
                keep.append(c)
        self.ctx = _Context(spark, cfg, classes, self.pos_label, numeric, categorical, keep, t, resampled)
        self.tune = self.binary and (cfg["validation_size"] or 0) > 0
        self.val_info = None
        if self.tune:
            self.fit_counts, val_counts = split_counts(self.train_counts, cfg["validation_size"], cfg["seed"],
                                                       "validation_size")
            _every_class_on_both_sides(self.fit_counts, val_counts, "validation_size", cfg["validation_size"],
                                       ("validation model's training", "validation"))
            # another hash seed than the test split's, so that the two splits are independent
            fit_part, val_part = split_by_counts(self.train, label, val_counts, cfg["seed"] + 1, self.train_counts)
            self.fit_part = fit_part.persist(StorageLevel.MEMORY_AND_DISK)
            self.val_part = val_part.persist(StorageLevel.MEMORY_AND_DISK)
            self.cached += [self.fit_part, self.val_part]
            self.val_info = {"validation_size": cfg["validation_size"], "fit_counts": _labels_str(self.fit_counts),
                             "validation_counts": _labels_str(val_counts),
                             "criterion": (f"recall >= {cfg['threshold_recall']}" if cfg["threshold_recall"]
                                           else "max F1 of the positive class")}

    def release(self):
        for d in self.cached:
            d.unpersist()

    def data_info(self, split_info=None) -> dict:
        return {"train_rows": sum(self.train_counts.values()), "test_rows": sum(self.test_counts.values()),
                "train_counts": _labels_str(self.train_counts), "test_counts": _labels_str(self.test_counts),
                **({"split": split_info} if split_info else {}),
                **({"validation": self.val_info} if self.val_info else {})}

    def run(self, s: Strategy):
        """Train ``s`` on all training rows, measure it on the test rows; with a validation split,
        also choose a threshold. Returns ``(FittedModel, entry)``."""
        spark, cfg, label, t = self.ctx.spark, self.cfg, self.label, self.t
        pc, sc, tc = fresh_all([PRED, SCORE, "pred_t"], [label])  # a label may be called score
        st = time.perf_counter()
        model, info = train_strategy(self.ctx, s, self.train, self.train_counts)
        thr = None
        if self.tune:
            vmodel, vinfo = train_strategy(self.ctx, s, self.fit_part, self.fit_counts, " (validation model)")
            with t.step(spark, f"{s.name}: choose threshold"):
                vpred = vmodel.predict(self.val_part, pc, sc).select(col(label), sc)
                curve = M.binary_curve(vpred, label, sc, self.pos_label, cfg["threshold_recall"])
            chosen = curve["recall_threshold"] if cfg["threshold_recall"] else curve.get("best_f1")
            thr = {"criterion": self.val_info["criterion"], "validation_train_counts": vinfo["train_counts"],
                   "validation": chosen, "validation_roc_auc": curve["roc_auc"],
                   "threshold": chosen["threshold"] if chosen else None}
            if chosen is None:
                thr["note"] = f"no threshold reaches recall {cfg['threshold_recall']} on the validation rows"
        with t.step(spark, f"{s.name}: evaluate"):
            pred = model.predict(self.test, pc, sc).select(col(label), pc, *([sc] if self.binary else []))
            pred = pred.persist(StorageLevel.MEMORY_AND_DISK)
            try:
                m = M.evaluate(pred, label, pc, sc if self.binary else None, self.pos_label)
                if thr and thr["threshold"] is not None:
                    at = M.threshold_predictions(pred, sc, thr["threshold"], self.pos_label, self.neg_label, tc)
                    thr["test_metrics"] = _str_labels(M.evaluate(at, label, tc))
            finally:
                pred.unpersist()
        entry = {"strategy": s.name, "sampler": s.sampler, "class_weight": s.weighted, **info,
                 "model": model.describe(), "metrics": _str_labels(m)}
        if thr:
            entry["threshold"] = thr
        entry["seconds"] = round(time.perf_counter() - st, 3)
        return model, entry

    def report_head(self, model_name: str, split_info=None) -> dict:
        cfg = self.cfg
        return {
            "label_col": self.label,
            "classes": [str(c) for c in self.classes],
            "binary": self.binary,
            "pos_label": None if self.pos_label is None else str(self.pos_label),
            "model": model_name,
            "model_params": cfg["model_params"] or {},
            "features": {"numeric": self.ctx.numeric, "categorical": self.ctx.categorical, "scale": cfg["scale"]},
            "data": self.data_info(split_info),
        }


CONVENTIONS = {
    "zero_division": "a ratio with a zero denominator is reported as 0.0 (scikit-learn's "
                     "zero_division=0) and listed under ill_defined",
    "positive_class": "the minority class of the training data; ROC AUC, average precision and "
                      "the threshold are for it",
    "threshold": "predict the positive class when its score >= threshold; chosen on a validation "
                 "split of the training rows by a model trained on the rest (scikit-learn's "
                 "TunedThresholdClassifierCV with refit=True)",
    "metrics": "computed by Spark aggregations on the predictions; each equals scikit-learn's / "
               "imbalanced-learn's on the same predictions",
}


def run_comparison(spark, train_df: DataFrame, test_df: DataFrame, cfg: dict | None = None,
                   timings: Timings | None = None, split_info: dict | None = None,
                   resampled: dict | None = None) -> dict:
    """Train and evaluate every configured strategy on the same rows; return the report dict
    (JSON-ready, class labels as strings), which :func:`imbal_spark.report.write_report` writes.

    ``cfg`` holds config keys (``imbal_spark.config.SCHEMA``; missing ones take their default):
    label_col, features, categorical, id_cols, order_col, weight_col, model, model_params,
    strategies, class_weight, sampling_strategy, k_neighbors, max_group_rows, seed, scale,
    validation_size, threshold_recall. Only aggregates reach the driver. ``resampled``:
    ``{sampler name: (DataFrame, summary)}``, ``train_df`` already resampled by that sampler with
    these settings (the pipeline passes the rows it wrote, so SMOTE does not run twice).
    """
    cfg = options(cfg)
    check_options(cfg)
    t = timings if timings is not None else Timings()
    strategies = parse_strategies(cfg["strategies"])
    model_name = canonical_model(cfg["model"])
    t0 = time.perf_counter()
    prep = _Prepared(spark, train_df, test_df, cfg, t, resampled)
    try:
        results = {}
        for s in strategies:
            log.info("strategy %s", s.name)
            _model, results[s.name] = prep.run(s)
        report = {
            **prep.report_head(model_name, split_info),
            "strategies": results,
            "summary": summary_rows(results, prep.pos_label, prep.classes),
            "conventions": CONVENTIONS,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        return to_jsonable(report)
    finally:
        prep.release()


def train_and_evaluate(spark, train_df: DataFrame, test_df: DataFrame, cfg: dict,
                       timings: Timings | None = None, split_info: dict | None = None):
    """One strategy (``cfg['strategy']``): ``(FittedModel, result dict)`` for the train job."""
    cfg = options(cfg)
    s = parse_strategy(cfg.get("strategy") or "none")
    cfg["strategies"] = [s.name]
    check_options(cfg)
    t = timings if timings is not None else Timings()
    prep = _Prepared(spark, train_df, test_df, cfg, t)
    try:
        model, entry = prep.run(s)
        return model, to_jsonable({**prep.report_head(canonical_model(cfg["model"]), split_info), **entry,
                                   "conventions": CONVENTIONS})
    finally:
        prep.release()


def summary_rows(results: dict, pos_label, classes) -> list:
    """One row per strategy: what the summary tables show."""
    rows = []
    minority = pos_label
    for name, r in results.items():
        m = r["metrics"]
        if minority is None:  # multiclass: the smallest class of the test set
            minority = min(m["per_class"], key=lambda c: (m["per_class"][c]["support"], label_sort_key(c)))
        pc = m["per_class"][minority]
        row = {
            "strategy": name,
            "train_counts": {str(c): r["train_counts"].get(c, 0) for c in classes},
            "minority_class": str(minority),
            "precision": pc["precision"], "recall": pc["recall"], "f1": pc["f1"],
            "accuracy": m["accuracy"], "macro_f1": m["macro_avg"]["f1"],
            "balanced_accuracy": m["balanced_accuracy"], "geometric_mean": m["geometric_mean"],
            "mcc": m["mcc"],
            "roc_auc": m.get("binary", {}).get("roc_auc"),
            "average_precision": m.get("binary", {}).get("average_precision"),
        }
        thr = r.get("threshold")
        if thr and thr.get("test_metrics"):
            tm = thr["test_metrics"]["per_class"][minority]
            row.update({"threshold": thr["threshold"], "precision_at_threshold": tm["precision"],
                        "recall_at_threshold": tm["recall"], "f1_at_threshold": tm["f1"]})
        rows.append(row)
    return rows


def to_jsonable(obj):
    """Label keys and label values as strings (JSON keys must be strings; labels may be ints)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj
