# Activation x depth (`snakemake fig_depth`): the NNGP swept over depths and
# (activation, w_std) variants, beside the networks named in depth_study.networks.


rule depth_nngp:
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
    output:
        table="results/depth/nngp.csv",
        records="results/depth/nngp_records.csv",
    log:
        "logs/depth/depth_nngp.log",
    benchmark:
        "benchmarks/depth/depth_nngp.tsv"
    params:
        study=config["depth_study"],
        nngp=config["nngp"],
        model=config["model"],
        loss=config["training"]["loss"],
        seed=config["seed"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/depth_nngp.py"


rule depth_networks:
    input:
        dataset="results/data/dataset.npz",
        mia=expand("results/{experiment}/nn/mia.csv", experiment=get_depth_networks()),
        lood=expand(
            "results/{experiment}/nngp/lood.csv", experiment=get_depth_networks()
        ),
        in_logits=get_depth_in_chunks(),
        lr=expand("results/{experiment}/nn/lr.csv", experiment=get_depth_networks()),
    output:
        table="results/depth/networks.csv",
    log:
        "logs/depth/depth_networks.log",
    params:
        networks=get_depth_networks(),
        archs=get_depth_archs(),
        chunks_per_network=N_IN_CHUNKS,
        loss=config["training"]["loss"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/depth_networks.py"


rule plot_depth:
    input:
        sweep="results/depth/nngp.csv",
        networks="results/depth/networks.csv",
    output:
        png=report(
            "results/depth/depth.png",
            caption="../report/depth.rst",
            category="Activation and depth",
        ),
        pdf="results/depth/depth.pdf",
        points="results/depth/auc_points.csv",
    log:
        "logs/depth/plot_depth.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_depth.py"


rule fig_depth:
    input:
        "results/depth/depth.png",
