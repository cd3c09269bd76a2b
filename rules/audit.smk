# The training-free audit (docs/audit.md): `snakemake --cores all audit`. Reads only the shared
# data stage; no network is trained and no records/training settings are used.


rule audit_lood:
    input:
        dataset="results/data/dataset.npz",
    output:
        lood_all="results/audit/lood_all.csv",
        info="results/audit/audit_info.json",
    log:
        "logs/audit/audit_lood.log",
    benchmark:
        "benchmarks/audit/audit_lood.tsv"
    params:
        experiment=get_audit_experiment(),
        arch=get_audit_arch(),
        nngp=config["nngp"],
        audit=config["audit"],
    conda:
        "../envs/jax.yaml"
    script:
        "../workflow_scripts/audit_lood.py"


rule audit_report:
    input:
        lood_all="results/audit/lood_all.csv",
        info="results/audit/audit_info.json",
    output:
        report="results/audit/report.md",
    log:
        "logs/audit/audit_report.log",
    params:
        top=config["audit"]["top"],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/audit_report.py"


rule plot_most_exposed:
    input:
        lood_all="results/audit/lood_all.csv",
        info="results/audit/audit_info.json",
        dataset="results/data/dataset.npz",
    output:
        png=report(
            "results/audit/figures/most_exposed.png",
            caption="../report/audit.rst",
            category="Audit",
        ),
        pdf="results/audit/figures/most_exposed.pdf",
    log:
        "logs/audit/plot_most_exposed.log",
    params:
        top=config["audit"]["top"],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_most_exposed.py"


rule fig_most_exposed:
    input:
        "results/audit/figures/most_exposed.png",


rule audit:
    input:
        "results/audit/figures/most_exposed.png",
        "results/audit/report.md",
