rule train_in_models:
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        probes="results/data/probes.npz",
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
