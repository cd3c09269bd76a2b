rule check_learning:
    """The in-models' training and held-out accuracy and loss decrease (nn/learning.csv); stops a run whose
    in-models stayed near chance unless checks.allow_untrained_networks (lood.empirical.learning)."""
    priority: 3
    input:
        dataset="results/data/dataset.npz",
        in_logits=get_in_chunks,
    output:
        learning="results/{experiment}/nn/learning.csv",
    log:
        "logs/train/check_learning_{experiment}.log",
    params:
        checks=config["checks"],
        loss=config["training"]["loss"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/check_learning.py"
