"""Compare class-imbalance strategies on one split: every strategy is trained on the same
training rows and measured on the same test rows.

    spark-submit jobs/compare.py --input PATH --label-col label --output DIR \\
        [--strategies none,class_weight,smote,random_under,smote+class_weight] [--model NAME] [--config FILE]
    spark-submit jobs/compare.py --train PATH --test PATH --label-col label --output DIR

Writes DIR/report.json, DIR/report.md, DIR/report.html (self-contained) and PNG plots, and
prints the summary table.
"""

from imbal_spark import config, io
from imbal_spark.cli import run
from imbal_spark.compare import check_options, options, run_comparison, split_input
from imbal_spark.progress import Timings, setup_logging
from imbal_spark.report import summary_table, write_report
from imbal_spark.session import get_spark

KEYS = ["input", "input_format", "train", "test", "label_col", "output", "mode", "features",
        "categorical", "id_cols", "order_col", "weight_col", "model", "model_params", "strategies",
        "class_weight", "sampling_strategy", "k_neighbors", "max_group_rows", "recall_sample", "halo", "probe", "seed",
        "test_size", "validation_size", "threshold_recall", "scale", "spark", "app_name", "log_level"]
# A tuned threshold is part of the comparison by default (20% of the training rows).
DEFAULTS = {"validation_size": 0.2, "class_weight": "balanced"}


def check_inputs(cfg):
    if cfg["input"] and (cfg["train"] or cfg["test"]):
        raise config.ConfigError("give either --input (split here) or --train and --test, not both")
    if not cfg["input"] and not (cfg["train"] and cfg["test"]):
        raise config.ConfigError("missing input: give --input PATH, or both --train PATH and --test PATH")


def main(argv):
    p = config.parser("compare", KEYS, __doc__)
    cfg = config.resolve(p, argv, required=["output", "label_col"], defaults=DEFAULTS)
    setup_logging(cfg["log_level"])
    check_inputs(cfg)
    check_options(options(cfg))
    io.precheck([cfg["input"], cfg["train"], cfg["test"]], cfg["output"], cfg["mode"], cfg.get("spark"))
    spark = get_spark(cfg["app_name"] or "imbal-spark compare", cfg["spark"])
    t = Timings()
    try:
        io.check_destination(spark, cfg["output"], cfg["mode"])
        with t.step(spark, "read input"):
            if cfg["input"]:
                df = io.read_table(spark, cfg["input"], cfg["input_format"])
                io.require_columns(df, [cfg["label_col"]], "label column")
                train, test, split_info = split_input(df, cfg)
                source = cfg["input"]
            else:
                train = io.read_table(spark, cfg["train"], cfg["input_format"])
                test = io.read_table(spark, cfg["test"], cfg["input_format"])
                split_info = {"split": "given", "train": cfg["train"], "test": cfg["test"]}
                source = f"train {cfg['train']}, test {cfg['test']}"
        report = run_comparison(spark, train, test, cfg, t, split_info)
        report = {"source": source, **report, "timings_s": dict(t)}
        print(summary_table(report), flush=True)
        with io.staged_output(spark, cfg["output"], cfg["mode"]) as out:
            write_report(spark, out, report)
    finally:
        spark.stop()


if __name__ == "__main__":
    run(main)
