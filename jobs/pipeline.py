"""The main job: the whole imbal-spark flow on one data set.

    spark-submit jobs/pipeline.py --input PATH --label-col label --output DIR [--config FILE]
    python jobs/pipeline.py --output out/example        # the reference experiment, built in
    python jobs/pipeline.py --rows 1000000 --output DIR  # generated example data of N rows

Steps: class distribution -> stratified split -> resampling of the training rows (--method)
-> training and evaluation of every strategy (--strategies) on the same test rows -> reports.
Writes DIR/distribution.json, DIR/resampled/ (Parquet: the resampled training rows) with
DIR/resample_summary.json, and DIR/report.{json,md,html} with PNG plots.
"""

from imbal_spark import config, datagen, io
from imbal_spark.cli import run
from imbal_spark.compare import check_options, make_sampler, options, run_comparison, split_input
from imbal_spark.distribution import class_distribution
from imbal_spark.progress import Timings, setup_logging
from imbal_spark.report import summary_table, write_report
from imbal_spark.session import get_spark
from imbal_spark.training import resolve_features

KEYS = ["input", "input_format", "label_col", "output", "mode", "rows", "seed", "features",
        "categorical", "id_cols", "order_col", "weight_col", "method", "sampling_strategy",
        "k_neighbors", "max_group_rows", "recall_sample", "halo", "probe", "model", "model_params", "strategies",
        "class_weight", "test_size", "validation_size", "threshold_recall", "scale", "partition_by",
        "spark", "app_name", "log_level"]
DEFAULTS = {"strategies": ["none", "class_weight", "smote", "random_under"], "class_weight": "balanced",
            "validation_size": 0.2}
#: With no --input: the reference experiment of REFERENCE.md (conf/reference.yaml's settings).
REFERENCE = {"id_cols": ["id", "pos"], "order_col": "pos", "model_params": {"C": 1.0, "maxIter": 1000, "tol": 1e-10},
             "k_neighbors": 5, "seed": 42}


def main(argv):
    p = config.parser("pipeline", KEYS, __doc__)
    cfg = config.resolve(p, argv, required=["output"], defaults=DEFAULTS)
    setup_logging(cfg["log_level"])
    builtin = not cfg["input"]
    if builtin and not cfg["rows"]:
        for k, v in REFERENCE.items():  # the reference settings, unless the user set the key
            if cfg[k] is None or cfg[k] == config.SCHEMA[k].default:
                cfg[k] = v
    if builtin and cfg["rows"] and not cfg["id_cols"]:
        cfg["id_cols"] = ["id"]  # the generator's row id is not a feature
    check_options(options(cfg))
    method = str(cfg["method"]).lower().replace("-", "_")
    io.precheck([cfg["input"]], cfg["output"], cfg["mode"], cfg.get("spark"))
    spark = get_spark(cfg["app_name"] or "imbal-spark pipeline", cfg["spark"])
    t = Timings()
    sampler = None
    try:
        io.check_destination(spark, cfg["output"], cfg["mode"])
        with t.step(spark, "read input"):
            split_info = None
            if cfg["input"]:
                df = io.read_table(spark, cfg["input"], cfg["input_format"])
                source = cfg["input"]
            elif cfg["rows"]:
                df = datagen.generate(spark, cfg["rows"], 20, 2, [0.9, 0.1], 2, cfg["seed"])
                source = f"generated example data ({cfg['rows']:,} rows, 20 features, 90/10)"
            else:
                train, test = datagen.reference_dataframes(spark)
                df = train.unionByName(test)
                split_info = {"split": "given", "train": "reference train (700 rows)",
                              "test": "reference test (300 rows)"}
                source = "the reference experiment (scikit-learn make_classification, REFERENCE.md)"
            io.require_columns(df, [cfg["label_col"]], "label column")
        with t.step(spark, "class distribution"):
            dist = class_distribution(df, cfg["label_col"])
            if dist.total_rows == 0:
                raise io.InputError(f"input {source!r} has no rows; nothing to do")
        print(f"input: {source}\n{dist.table()}\n", flush=True)
        if split_info is None:
            with t.step(spark, "stratified split"):
                train, test, split_info = split_input(df, cfg)
        numeric, _ = resolve_features(train, cfg["label_col"], cfg["features"], cfg["categorical"],
                                      cfg["id_cols"] or (), cfg["weight_col"], exclude=[cfg["order_col"]] if cfg["order_col"] else [])
        sampler = make_sampler(method, options(cfg), numeric)
        resampled = sampler.fit_resample(train)
        with io.staged_output(spark, cfg["output"], cfg["mode"]) as out:
            io.write_json(spark, f"{out}/distribution.json", {"input": source, **dist.to_dict()})
            with t.step(spark, f"resample and write training data ({method})"):
                io.write_parquet(resampled, f"{out}/resampled", cfg["partition_by"])
            io.write_json(spark, f"{out}/resample_summary.json", sampler.summary_)
            sampler.release()
            # The comparison trains its `method` strategy on the rows just written instead of
            # resampling again (same rows, same settings: SMOTE is deterministic). A partitioned
            # output reads back with inferred partition-column types, so it is resampled again.
            reuse = {} if cfg["partition_by"] else {
                method: (spark.read.parquet(f"{out}/resampled"), sampler.summary_)}
            report = run_comparison(spark, train, test, cfg, t, split_info, resampled=reuse)
            report = {"source": source, **report, "timings_s": dict(t)}
            write_report(spark, out, report)
        print(summary_table(report), flush=True)
        print(f"\nreports: {cfg['output'].rstrip('/')}/report.html (and .md, .json)", flush=True)
    finally:
        if sampler is not None:
            sampler.release()
        spark.stop()


if __name__ == "__main__":
    run(main)
