"""Train one MLlib classifier with one class-imbalance strategy; save the model and its test
metrics.

    spark-submit jobs/train.py --input PATH --label-col label --output DIR \\
        [--strategy none|class_weight|smote|random_under|random_over|smote+class_weight] \\
        [--model logistic_regression] [--model-params '{C: 0.5}'] [--config FILE]
    spark-submit jobs/train.py --train PATH --test PATH --label-col label --output DIR ...

Writes DIR/model (MLlib PipelineModel format: feature stages + classifier; prediction i is
class i of DIR/metrics.json's "classes") and DIR/metrics.json (test metrics).
"""

from imbal_spark import config, io
from imbal_spark.cli import run
from imbal_spark.compare import check_options, options, split_input, train_and_evaluate
from imbal_spark.progress import Timings, setup_logging
from imbal_spark.session import get_spark

KEYS = ["input", "input_format", "train", "test", "label_col", "output", "mode", "features",
        "categorical", "id_cols", "order_col", "weight_col", "model", "model_params", "strategy",
        "class_weight", "sampling_strategy", "k_neighbors", "max_group_rows", "recall_sample", "halo", "probe", "seed",
        "test_size", "validation_size", "threshold_recall", "scale", "spark", "app_name", "log_level"]
DEFAULTS = {"class_weight": "balanced"}


def main(argv):
    p = config.parser("train", KEYS, __doc__)
    cfg = config.resolve(p, argv, required=["output", "label_col"], defaults=DEFAULTS)
    setup_logging(cfg["log_level"])
    if cfg["input"] and (cfg["train"] or cfg["test"]):
        raise config.ConfigError("give either --input (split here) or --train and --test, not both")
    if not cfg["input"] and not (cfg["train"] and cfg["test"]):
        raise config.ConfigError("missing input: give --input PATH, or both --train PATH and --test PATH")
    cfg["strategies"] = [cfg["strategy"]]
    check_options(options(cfg))
    io.precheck([cfg["input"], cfg["train"], cfg["test"]], cfg["output"], cfg["mode"], cfg.get("spark"))
    spark = get_spark(cfg["app_name"] or "imbal-spark train", cfg["spark"])
    t = Timings()
    try:
        io.check_destination(spark, cfg["output"], cfg["mode"])
        with t.step(spark, "read input"):
            if cfg["input"]:
                df = io.read_table(spark, cfg["input"], cfg["input_format"])
                io.require_columns(df, [cfg["label_col"]], "label column")
                train, test, split_info = split_input(df, cfg)
            else:
                train = io.read_table(spark, cfg["train"], cfg["input_format"])
                test = io.read_table(spark, cfg["test"], cfg["input_format"])
                split_info = {"split": "given", "train": cfg["train"], "test": cfg["test"]}
        with io.staged_output(spark, cfg["output"], cfg["mode"]) as out:
            model, result = train_and_evaluate(spark, train, test, cfg, t, split_info)
            with t.step(spark, "save model"):
                model.save(f"{out}/model")
            result["timings_s"] = dict(t)
            io.write_json(spark, f"{out}/metrics.json", result)
        m = result["metrics"]
        print(f"strategy {cfg['strategy']}, model {result['model']['model']}: "
              f"accuracy {m['accuracy']:.4f}, macro F1 {m['macro_avg']['f1']:.4f}, "
              f"balanced accuracy {m['balanced_accuracy']:.4f}"
              + (f", ROC AUC {m['binary']['roc_auc']:.4f}" if m.get("binary") and m["binary"]["roc_auc"] is not None else ""),
              flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    run(main)
