# The audit (docs/audit.md): `snakemake --cores all audit`. Reads only the shared data stage and,
# when its sigma^2 rule is calibrate, the experiment's step size: it then trains
# audit.calibrate_models in-models; otherwise no network is trained.


rule audit_lood:
    input:
        dataset="results/data/dataset.npz",
        # calibrate (audit.sigma2, else nngp.sigma2) trains audit.calibrate_models in-models at the experiment's step
        lr=(
            f"results/{get_audit_experiment()}/nn/lr.csv"
            if (config["audit"]["sigma2"] or config["nngp"]["sigma2"]) == "calibrate"
            else []
        ),
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
        training=config["training"],
        seed=config["seed"],
    resources:
        gpu=0,  # profiles/slurm sets 1 where the partition has GPUs (the preflight drops it where none)
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
