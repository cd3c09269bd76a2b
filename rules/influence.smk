rule influence:
    """TracIn and influence-function self-influence of each record (lood.influence.baselines.influence_table,
    docs/math.md §10), beside the NNGP mean-distance LOOD and the NN prediction difference
    (lood.influence.baselines.comparison_table)."""
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        mia="results/{experiment}/nn/mia.csv",
        lood="results/{experiment}/nngp/lood.csv",
        lr="results/{experiment}/nn/lr.csv",
    output:
        scores="results/{experiment}/influence/scores.csv",
    log:
        "logs/influence/influence_{experiment}.log",
    benchmark:
        "benchmarks/influence/influence_{experiment}.tsv"
    params:
        arch=get_arch,
        training=config["training"],
        influence=config["influence"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/influence.py"
