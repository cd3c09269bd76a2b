rule replication_models:
    """A second, independent set of n_in in- and n_out out-models for the first replication.records
    studied records (lood.studies.replication.train_replication: another seed stream, same data)."""
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        lr="results/{experiment}/nn/lr.csv",
    output:
        models="results/{experiment}/replication/models.npz",
    log:
        "logs/replication/replication_models_{experiment}.log",
    benchmark:
        "benchmarks/replication/replication_models_{experiment}.tsv"
    params:
        arch=get_arch,
        training=config["training"],
        seed=config["seed"],
        n_records=config["replication"]["records"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/replication_models.py"


rule replication_study:
    """The attack on the replication's models beside the experiment's own run: test-retest correlation at
    full size, the disattenuated and mean-of-runs correlations of the LOOD (lood.studies.replication)."""
    input:
        records="results/data/records.csv",
        models="results/{experiment}/replication/models.npz",
        mia="results/{experiment}/nn/mia.csv",
        halves="results/{experiment}/nn/mia_halves.csv",
        scores="results/{experiment}/nn/model_scores.npz",
        lood="results/{experiment}/nngp/lood.csv",
    output:
        records="results/{experiment}/replication/records.csv",
        summary="results/{experiment}/replication/summary.csv",
    log:
        "logs/replication/replication_study_{experiment}.log",
    params:
        splits=config["mia"]["splits"],
        bootstrap=config["figures"]["bootstrap"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/replication_study.py"


rule replication:
    """`snakemake replication`: the full-size replication of every experiment (outside the default target)."""
    input:
        expand("results/{experiment}/replication/summary.csv", experiment=EXPERIMENTS),
