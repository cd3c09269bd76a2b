rule choose_sigma2:
    priority: 3
    input:
        dataset="results/data/dataset.npz",
        in_logits=get_sigma2_inputs,
        learning="results/{experiment}/nn/learning.csv",
    output:
        sigma2="results/{experiment}/nngp/sigma2.csv",
        curve="results/{experiment}/nngp/sigma2_curve.csv",
    log:
        "logs/nngp/choose_sigma2_{experiment}.log",
    benchmark:
        "benchmarks/nngp/choose_sigma2_{experiment}.tsv"
    params:
        arch=get_arch,
        nngp=config["nngp"],
        loss=config["training"]["loss"],
        checks=config["checks"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/choose_sigma2.py"


rule sigma2_sensitivity:
    priority: 1
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        in_logits=get_in_chunks,
    output:
        grid="results/{experiment}/nngp/sigma2_grid.csv",
        objectives="results/{experiment}/nngp/sigma2_objectives.csv",
    log:
        "logs/nngp/sigma2_sensitivity_{experiment}.log",
    benchmark:
        "benchmarks/nngp/sigma2_sensitivity_{experiment}.tsv"
    params:
        arch=get_arch,
        nngp=config["nngp"],
        loss=config["training"]["loss"],
        seed=config["seed"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/sigma2_sensitivity.py"


rule nngp_lood:
    priority: 2
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        sigma2="results/{experiment}/nngp/sigma2.csv",
        lr="results/{experiment}/nn/lr.csv",
        in_logits=get_spread_inputs,
    output:
        lood="results/{experiment}/nngp/lood.csv",
        spread="results/{experiment}/nngp/spread.csv",
    log:
        "logs/nngp/nngp_lood_{experiment}.log",
    benchmark:
        "benchmarks/nngp/nngp_lood_{experiment}.tsv"
    params:
        arch=get_arch,
        nngp=config["nngp"],
        training=config["training"],
        seed=config["seed"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/nngp_lood.py"


rule nngp_lood_all:
    priority: 2
    input:
        dataset="results/data/dataset.npz",
        sigma2="results/{experiment}/nngp/sigma2.csv",
    output:
        lood_all="results/{experiment}/nngp/lood_all.csv",
    log:
        "logs/nngp/nngp_lood_all_{experiment}.log",
    benchmark:
        "benchmarks/nngp/nngp_lood_all_{experiment}.tsv"
    params:
        arch=get_arch,
        nngp=config["nngp"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/nngp_lood_all.py"


rule nngp_landscape:
    priority: 2
    input:
        dataset="results/data/dataset.npz",
        probes="results/data/probes.npz",
        sigma2="results/{experiment}/nngp/sigma2.csv",
    output:
        landscape="results/{experiment}/nngp/landscape.csv",
    log:
        "logs/nngp/nngp_landscape_{experiment}.log",
    benchmark:
        "benchmarks/nngp/nngp_landscape_{experiment}.tsv"
    params:
        arch=get_arch,
        nngp=config["nngp"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/nngp_landscape.py"


rule optimise_query:
    priority: 2
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
        sigma2="results/{experiment}/nngp/sigma2.csv",
    output:
        table="results/{experiment}/nngp/query.csv",
        queries=directory("results/{experiment}/nngp/query"),
    log:
        "logs/nngp/optimise_query_{experiment}.log",
    benchmark:
        "benchmarks/nngp/optimise_query_{experiment}.tsv"
    params:
        arch=get_arch,
        nngp=config["nngp"],
        query=config["query"],
        seed=config["seed"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/optimise_query.py"
