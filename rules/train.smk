rule learning_rate:
    """The step of every training rule of the experiment: training.lr, or for `auto` the largest
    stable step from the NTK (lood.empirical.step_size, docs/math.md §13), with the NTK's eigenvalues."""
    priority: 3
    input:
        dataset="results/data/dataset.npz",
    output:
        lr="results/{experiment}/nn/lr.csv",
    log:
        "logs/train/learning_rate_{experiment}.log",
    benchmark:
        "benchmarks/train/learning_rate_{experiment}.tsv"
    params:
        arch=get_arch,
        training=config["training"],
        seed=config["seed"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/learning_rate.py"


rule train_in_models:
    priority: 3
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        probes="results/data/probes.npz",
        lr="results/{experiment}/nn/lr.csv",
    output:
        **get_weights_output("in"),
        logits="results/{experiment}/nn/in/chunk{chunk}.npz",
    log:
        "logs/train/train_in_models_{experiment}_{chunk}.log",
    benchmark:
        "benchmarks/train/train_in_models_{experiment}_{chunk}.tsv"
    params:
        arch=get_arch,
        training=config["training"],
        seed=config["seed"],
        model_ids=get_model_ids,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_in_models.py"


rule train_out_models:
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        probes="results/data/probes.npz",
        lr="results/{experiment}/nn/lr.csv",
    output:
        **get_weights_output("out"),
        logits="results/{experiment}/nn/out/group{group}.npz",
    log:
        "logs/train/train_out_models_{experiment}_{group}.log",
    benchmark:
        "benchmarks/train/train_out_models_{experiment}_{group}.tsv"
    params:
        arch=get_arch,
        training=config["training"],
        seed=config["seed"],
        positions=get_group_positions,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_out_models.py"
