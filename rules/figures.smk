rule plot_correlation:
    input:
        mia="results/{experiment}/nn/mia.csv",
        halves="results/{experiment}/nn/mia_halves.csv",
        scores="results/{experiment}/nn/model_scores.npz",
        lood="results/{experiment}/nngp/lood.csv",
    output:
        png=report(
            "results/{experiment}/figures/correlation.png",
            caption="../report/correlation.rst",
            category="Correlation",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/correlation.pdf",
        table="results/{experiment}/figures/correlation.csv",
    log:
        "logs/figures/plot_correlation_{experiment}.log",
    params:
        bootstrap=config["figures"]["bootstrap"],
        seed=config["seed"],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_correlation.py"


rule plot_landscape:
    input:
        nn="results/{experiment}/nn/landscape.csv",
        nngp="results/{experiment}/nngp/landscape.csv",
    output:
        png=report(
            "results/{experiment}/figures/landscape.png",
            caption="../report/landscape.rst",
            category="Landscape",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/landscape.pdf",
        peaks="results/{experiment}/figures/landscape_peaks.csv",
    log:
        "logs/figures/plot_landscape_{experiment}.log",
    params:
        records=config["figures"]["landscape_records"],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_landscape.py"


rule plot_activation:
    input:
        mia=expand("results/{experiment}/nn/mia.csv", experiment=get_activation_pair()),
        lood=expand(
            "results/{experiment}/nngp/lood.csv", experiment=get_activation_pair()
        ),
    output:
        png=report(
            "results/comparison/activation.png",
            caption="../report/activation.rst",
            category="Activation",
        ),
        pdf="results/comparison/activation.pdf",
    log:
        "logs/figures/plot_activation.log",
    params:
        names=get_activation_pair(),
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_activation.py"


rule plot_vulnerable:
    input:
        lood_all="results/{experiment}/nngp/lood_all.csv",
        mia="results/{experiment}/nn/mia.csv",
        dataset="results/data/dataset.npz",
    output:
        png=report(
            "results/{experiment}/figures/vulnerable.png",
            caption="../report/vulnerable.rst",
            category="Most exposed records",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/vulnerable.pdf",
    log:
        "logs/figures/plot_vulnerable_{experiment}.log",
    params:
        gallery=config["figures"]["gallery"],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_vulnerable.py"


rule plot_reconstruction:
    input:
        table="results/{experiment}/nngp/query.csv",
        queries="results/{experiment}/nngp/query",
        dataset="results/data/dataset.npz",
    output:
        png=report(
            "results/{experiment}/figures/reconstruction.png",
            caption="../report/reconstruction.rst",
            category="Reconstruction",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/reconstruction.pdf",
    log:
        "logs/figures/plot_reconstruction_{experiment}.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_reconstruction.py"


rule plot_influence:
    input:
        scores="results/{experiment}/influence/scores.csv",
        lood="results/{experiment}/nngp/lood.csv",
        mia="results/{experiment}/nn/mia.csv",
    output:
        png=report(
            "results/{experiment}/figures/influence.png",
            caption="../report/influence.rst",
            category="Influence estimators",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/influence.pdf",
        table="results/{experiment}/figures/influence.csv",
    log:
        "logs/figures/plot_influence_{experiment}.log",
    params:
        bootstrap=config["figures"]["bootstrap"],
        seed=config["seed"],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_influence.py"


rule plot_sigma:
    input:
        grid="results/{experiment}/nngp/sigma2_grid.csv",
        objectives="results/{experiment}/nngp/sigma2_objectives.csv",
        mia="results/{experiment}/nn/mia.csv",
        sigma2="results/{experiment}/nngp/sigma2.csv",
    output:
        png=report(
            "results/{experiment}/figures/sigma.png",
            caption="../report/sigma.rst",
            category="Sensitivity to sigma2",
            subcategory="{experiment}",
        ),
        pdf="results/{experiment}/figures/sigma.pdf",
        table="results/{experiment}/figures/sigma.csv",
        marks="results/{experiment}/figures/sigma_marks.csv",
    log:
        "logs/figures/plot_sigma_{experiment}.log",
    params:
        bootstrap=config["figures"]["bootstrap"],
        seed=config["seed"],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_sigma.py"


# Named targets: `snakemake fig_<name>` builds one figure for every experiment.
rule fig_correlation:
    input:
        get_figure("correlation"),


rule fig_landscape:
    input:
        get_figure("landscape"),


rule fig_activation:
    input:
        "results/comparison/activation.png",


rule fig_vulnerable:
    input:
        get_figure("vulnerable"),


rule fig_reconstruction:
    input:
        get_figure("reconstruction"),


rule fig_influence:
    input:
        get_figure("influence"),


rule fig_sigma:
    input:
        get_figure("sigma"),
