# Leakage in privacy-auditing units (docs/privacy.md): the networks' attacks pooled over (model, record)
# pairs and per record, the NNGP's prediction of both, and the figure that puts them side by side.


rule mia_privacy:
    input:
        records="results/data/records.csv",
        in_logits=get_in_chunks,
        out_logits=get_out_groups,
    output:
        pooled="results/{experiment}/nn/privacy_pooled.csv",
        roc="results/{experiment}/nn/privacy_roc.csv",
        records="results/{experiment}/nn/privacy_records.csv",
    log:
        "logs/mia/mia_privacy_{experiment}.log",
    benchmark:
        "benchmarks/mia/mia_privacy_{experiment}.tsv"
    params:
        privacy=config["privacy"],
        loss=config["training"]["loss"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/mia_privacy.py"


rule nngp_privacy:
    priority: 2
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        sigma2="results/{experiment}/nngp/sigma2.csv",
    output:
        records="results/{experiment}/nngp/privacy.csv",
        roc="results/{experiment}/nngp/privacy_roc.csv",
    log:
        "logs/nngp/nngp_privacy_{experiment}.log",
    benchmark:
        "benchmarks/nngp/nngp_privacy_{experiment}.tsv"
    params:
        arch=get_arch,
        nngp=config["nngp"],
        privacy=config["privacy"],
        n_out=config["training"]["n_out"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/nngp_privacy.py"


rule plot_privacy:
    input:
        pooled="results/{experiment}/nn/privacy_pooled.csv",
        roc="results/{experiment}/nn/privacy_roc.csv",
        records="results/{experiment}/nn/privacy_records.csv",
        predicted="results/{experiment}/nngp/privacy.csv",
        predicted_roc="results/{experiment}/nngp/privacy_roc.csv",
    output:
        png=report(
            "results/{experiment}/figures/privacy.png",
            caption="../report/privacy.rst",
            category="Privacy units",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/privacy.pdf",
        records="results/{experiment}/figures/privacy_records.csv",
        summary="results/{experiment}/figures/privacy.csv",
        agreement="results/{experiment}/figures/privacy_agreement.csv",
    log:
        "logs/figures/plot_privacy_{experiment}.log",
    params:
        fprs=config["privacy"]["fprs"],
        bootstrap=config["figures"]["bootstrap"],
        seed=config["seed"],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_privacy.py"


rule fig_privacy:
    input:
        get_figure("privacy"),
