rule size_study:
    """Every analytic model (posterior, ensemble) and spread (none, calibrate) at the studied records, beside
    the attack's AUC (docs/size.md); the models read the in-models only, mia.csv enters the comparison."""
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        sigma2="results/{experiment}/nngp/sigma2.csv",
        lr="results/{experiment}/nn/lr.csv",
        in_logits=get_in_chunks,
        mia="results/{experiment}/nn/mia.csv",
    output:
        rows="results/{experiment}/size/size.csv",
        summary="results/{experiment}/size/size_summary.csv",
        spread="results/{experiment}/size/spread.csv",
    log:
        "logs/size/size_study_{experiment}.log",
    benchmark:
        "benchmarks/size/size_study_{experiment}.tsv"
    params:
        arch=get_arch,
        training=config["training"],
        nngp=config["nngp"],
        bootstrap=config["figures"]["bootstrap"],
        seed=config["seed"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/size_study.py"


rule plot_size:
    input:
        summaries=expand(
            "results/{experiment}/size/size_summary.csv", experiment=EXPERIMENTS
        ),
    output:
        png=report(
            "results/comparison/size.png",
            caption="../report/size.rst",
            category="Leakage in size",
        ),
        pdf="results/comparison/size.pdf",
        table="results/comparison/size.csv",
    log:
        "logs/figures/plot_size.log",
    params:
        experiments=EXPERIMENTS,
        nngp=config["nngp"],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_size.py"


rule fig_size:
    input:
        "results/comparison/size.png",
