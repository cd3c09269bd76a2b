# Leave-group-out (duplicates, neighbour groups) and planted canaries (docs/math.md §11).
# `snakemake fig_group` / `snakemake fig_canary`; in the default target when groups.run_by_default /
# canaries.run_by_default is true.


rule group_nngp:
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        sigma2="results/{experiment}/nngp/sigma2.csv",
    output:
        duplicates="results/{experiment}/group/nngp_duplicates.csv",
        neighbours="results/{experiment}/group/neighbours.csv",
    log:
        "logs/group/group_nngp_{experiment}.log",
    benchmark:
        "benchmarks/group/group_nngp_{experiment}.tsv"
    params:
        arch=get_arch,
        nngp=config["nngp"],
        groups=config["groups"],
        seed=config["seed"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/group_nngp.py"


rule train_copies:
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        lr="results/{experiment}/nn/lr.csv",
    output:
        logits="results/{experiment}/group/nn/copies{copies}.npz",
    log:
        "logs/group/train_copies_{experiment}_{copies}.log",
    benchmark:
        "benchmarks/group/train_copies_{experiment}_{copies}.tsv"
    params:
        arch=get_arch,
        training=config["training"],
        groups=config["groups"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_copies.py"


rule group_mia:
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        in_logits=get_in_chunks,
        out_logits=get_out_groups,
        copies=get_copies_logits,
    output:
        mia="results/{experiment}/group/mia_duplicates.csv",
    log:
        "logs/group/group_mia_{experiment}.log",
    params:
        groups=config["groups"],
        mia=config["mia"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/group_mia.py"


rule plot_group:
    input:
        duplicates="results/{experiment}/group/nngp_duplicates.csv",
        mia="results/{experiment}/group/mia_duplicates.csv",
        neighbours="results/{experiment}/group/neighbours.csv",
    output:
        png=report(
            "results/{experiment}/figures/group.png",
            caption="../report/group.rst",
            category="Groups and canaries",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/group.pdf",
        table="results/{experiment}/figures/group.csv",
        slopes="results/{experiment}/group/duplicate_slopes.csv",
    log:
        "logs/figures/plot_group_{experiment}.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_group.py"


rule make_canaries:
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
    output:
        dataset="results/canary/data/dataset.npz",
        canaries="results/canary/data/canaries.csv",
    log:
        "logs/group/make_canaries.log",
    params:
        canaries=config["canaries"],
        seed=config["seed"],
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/make_canaries.py"


rule canary_train_in:
    input:
        dataset="results/canary/data/dataset.npz",
        canaries="results/canary/data/canaries.csv",
        records="results/data/records.csv",
        lr="results/{experiment}/nn/lr.csv",
    output:
        logits="results/{experiment}/canary/nn/in.npz",
    log:
        "logs/group/canary_train_in_{experiment}.log",
    benchmark:
        "benchmarks/group/canary_train_in_{experiment}.tsv"
    params:
        arch=get_arch,
        canaries=config["canaries"],
        training=config["training"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/canary_train_in.py"


rule canary_train_out:
    input:
        dataset="results/canary/data/dataset.npz",
        canaries="results/canary/data/canaries.csv",
        records="results/data/records.csv",
        lr="results/{experiment}/nn/lr.csv",
    output:
        logits="results/{experiment}/canary/nn/out.npz",
    log:
        "logs/group/canary_train_out_{experiment}.log",
    benchmark:
        "benchmarks/group/canary_train_out_{experiment}.tsv"
    params:
        arch=get_arch,
        canaries=config["canaries"],
        training=config["training"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/canary_train_out.py"


rule canary_mia:
    input:
        canaries="results/canary/data/canaries.csv",
        records="results/data/records.csv",
        dataset="results/canary/data/dataset.npz",
        in_logits="results/{experiment}/canary/nn/in.npz",
        out_logits="results/{experiment}/canary/nn/out.npz",
    output:
        mia="results/{experiment}/canary/mia.csv",
    log:
        "logs/group/canary_mia_{experiment}.log",
    params:
        canaries=config["canaries"],
        mia=config["mia"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/canary_mia.py"


rule canary_nngp:
    input:
        dataset="results/canary/data/dataset.npz",
        canaries="results/canary/data/canaries.csv",
        sigma2="results/{experiment}/nngp/sigma2.csv",
    output:
        lood_all="results/{experiment}/canary/nngp/lood_all.csv",
        lood="results/{experiment}/canary/nngp/lood.csv",
        query="results/{experiment}/canary/nngp/query.csv",
        queries="results/{experiment}/canary/nngp/queries.npz",
    log:
        "logs/group/canary_nngp_{experiment}.log",
    benchmark:
        "benchmarks/group/canary_nngp_{experiment}.tsv"
    params:
        arch=get_arch,
        nngp=config["nngp"],
        query=config["query"],
        seed=config["seed"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/canary_nngp.py"


rule plot_canary:
    input:
        lood_all="results/{experiment}/canary/nngp/lood_all.csv",
        lood="results/{experiment}/canary/nngp/lood.csv",
        query="results/{experiment}/canary/nngp/query.csv",
        queries="results/{experiment}/canary/nngp/queries.npz",
        mia="results/{experiment}/canary/mia.csv",
        dataset="results/canary/data/dataset.npz",
    output:
        png=report(
            "results/{experiment}/figures/canary.png",
            caption="../report/canary.rst",
            category="Groups and canaries",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/canary.pdf",
        table="results/{experiment}/figures/canary.csv",
    log:
        "logs/figures/plot_canary_{experiment}.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_canary.py"


rule fig_group:
    input:
        get_figure("group"),


rule fig_canary:
    input:
        get_figure("canary"),


# The network side of the neighbour groups (`snakemake group_study`): out-models trained without
# each record's group G, for groups.network_kinds x network_sizes x the first network_count records.


rule train_group_out:
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        lr="results/{experiment}/nn/lr.csv",
    output:
        logits="results/{experiment}/group/nn/out_{kind}.npz",
    log:
        "logs/group/train_group_out_{experiment}_{kind}.log",
    benchmark:
        "benchmarks/group/train_group_out_{experiment}_{kind}.tsv"
    wildcard_constraints:
        kind="nearest|farthest|random_same|random_any",
    params:
        arch=get_arch,
        training=config["training"],
        groups=config["groups"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_group_out.py"


rule group_networks:
    input:
        dataset="results/data/dataset.npz",
        in_logits=get_in_chunks,
        out_logits=expand(
            "results/{{experiment}}/group/nn/out_{kind}.npz",
            kind=config["groups"]["network_kinds"],
        ),
        neighbours="results/{experiment}/group/neighbours.csv",
        mia="results/{experiment}/nn/mia.csv",
        lood="results/{experiment}/nngp/lood.csv",
    output:
        table="results/{experiment}/group/networks.csv",
        summary="results/{experiment}/group/networks_summary.csv",
    log:
        "logs/group/group_networks_{experiment}.log",
    benchmark:
        "benchmarks/group/group_networks_{experiment}.tsv"
    params:
        groups=config["groups"],
        mia=config["mia"],
        bootstrap=config["figures"]["bootstrap"],
        seed=config["seed"],
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/group_networks.py"


rule plot_group_networks:
    input:
        summary="results/{experiment}/group/networks_summary.csv",
        table="results/{experiment}/group/networks.csv",
    output:
        png=report(
            "results/{experiment}/figures/group_networks.png",
            caption="../report/group_networks.rst",
            category="Groups and canaries",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/group_networks.pdf",
        table="results/{experiment}/figures/group_networks.csv",
    log:
        "logs/figures/plot_group_networks_{experiment}.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_group_networks.py"


localrules:
    fig_group_networks,
    group_study,


rule fig_group_networks:
    input:
        get_figure("group_networks"),


rule group_study:
    input:
        get_figure("group"),
        get_figure("group_networks"),
        get_figure("canary"),
