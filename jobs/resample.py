"""Resample a labelled data set with SMOTE or random over/under-sampling (imbalanced-learn semantics).

    spark-submit jobs/resample.py --input PATH --label-col COL --output DIR \\
        --method smote|random_over|random_under [--sampling-strategy auto|minority|not-majority|...|0.5|JSON]
        [--k-neighbors 5] [--seed N] [--features c1,c2,...] [--id-cols id,...] [--order-col COL]
        [--max-group-rows N] [--halo 0.6] [--probe 0.15] [--recall-sample N] [--mode overwrite] [--config FILE]

Writes DIR/data/ (Parquet: the input rows unchanged plus new rows flagged is_synthetic, or the
kept rows) and DIR/summary.json (method, parameters, class counts before and after, groups,
neighbour recall, timings). The driver never holds the rows.
"""

from imbal_spark import config, io
from imbal_spark.cli import run
from imbal_spark.errors import ConfigError
from imbal_spark.progress import Timings, setup_logging
from imbal_spark.sampling import SAMPLERS
from imbal_spark.sampling.strategy import NAMES, normalize_strategy
from imbal_spark.session import get_spark

KEYS = ["input", "input_format", "label_col", "output", "method", "sampling_strategy", "k_neighbors",
        "seed", "features", "id_cols", "weight_col", "order_col", "max_group_rows", "recall_sample", "halo", "probe",
        "mode", "partition_by", "spark", "app_name", "log_level"]


def check_options(cfg) -> str:
    """Checks that need no data, done before Spark starts."""
    method = str(cfg["method"]).strip().lower().replace("-", "_")
    if method not in SAMPLERS:
        raise ConfigError(f"unknown --method {cfg['method']!r}; use one of {', '.join(SAMPLERS)}")
    s = normalize_strategy(cfg["sampling_strategy"], [])
    if isinstance(s, str) and s not in NAMES:
        raise ConfigError(f"unknown --sampling-strategy {cfg['sampling_strategy']!r}; use one of "
                          f"{', '.join(n.replace(' ', '-') for n in NAMES)}, a float in (0, 1] or a "
                          f"JSON mapping like '{{\"1\": 5000}}'")
    if method == "smote":
        from imbal_spark.sampling.smote import check_halo, check_probe

        check_halo(cfg["halo"])
        check_probe(cfg["probe"])
    return method


def build_sampler(method, cfg):
    cls = SAMPLERS[method]
    args = dict(label_col=cfg["label_col"], features=cfg["features"], sampling_strategy=cfg["sampling_strategy"],
                random_state=cfg["seed"], id_cols=cfg["id_cols"] or (), weight_col=cfg["weight_col"],
                order_col=cfg["order_col"], max_group_rows=cfg["max_group_rows"])
    if method == "smote":
        args.update(k_neighbors=cfg["k_neighbors"], recall_sample=cfg["recall_sample"], halo=cfg["halo"], probe=cfg["probe"])
    return cls(**args)


def table(summary) -> str:
    before, after = summary["counts_before"], summary["counts_after"]
    w = max([5] + [len(str(k)) for k in before])
    lines = [f"{'class':<{w}}  {'before':>12}  {'after':>12}"]
    lines += [f"{str(k):<{w}}  {before[k]:>12,}  {after[k]:>12,}" for k in before]
    lines.append(f"{'total':<{w}}  {sum(before.values()):>12,}  {sum(after.values()):>12,}")
    return "\n".join(lines)


def main(argv):
    p = config.parser("resample", KEYS, __doc__)
    cfg = config.resolve(p, argv, required=["input", "label_col", "output"])
    setup_logging(cfg["log_level"])
    method = check_options(cfg)
    sampler = build_sampler(method, cfg)
    io.precheck([cfg["input"]], cfg["output"], cfg["mode"], cfg.get("spark"))  # local paths: before the JVM starts
    spark = get_spark(cfg["app_name"] or f"imbal-spark resample ({method})", cfg["spark"])
    t = Timings()
    try:
        io.check_destination(spark, cfg["output"], cfg["mode"])
        with t.step(spark, "read input"):
            df = io.read_table(spark, cfg["input"], cfg["input_format"])
            io.require_columns(df, [cfg["label_col"]], "label column")
        out = sampler.fit_resample(df)  # counting/grouping passes; the new rows are made on write
        with io.staged_output(spark, cfg["output"], cfg["mode"]) as tmp:
            with t.step(spark, "resample and write data"):
                io.write_parquet(out, f"{tmp}/data", cfg["partition_by"])
            summary = {"input": cfg["input"], "output": cfg["output"], "data": f"{cfg['output'].rstrip('/')}/data",
                       **sampler.summary_}
            summary["timings"] = {"read input": t["read input"], **sampler.summary_["timings"],
                                  **{k: v for k, v in t.items() if k != "read input"}}
            io.write_json(spark, f"{tmp}/summary.json", summary)
        print(f"{method}: {cfg['input']} -> {cfg['output']}\n{table(sampler.summary_)}", flush=True)
    finally:
        sampler.release()
        spark.stop()


if __name__ == "__main__":
    run(main)
