rule influence:
    """TracIn and influence-function self-influence of each record (lood.influence.baselines.influence_table,
    docs/math.md §10); plot_influence sets them beside the NNGP mean-distance LOOD and the NN prediction
    difference. No out-model enters: the job runs while the out-models train."""
    priority: 1
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
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
