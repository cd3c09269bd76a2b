rule report_landing:
    """The report's first page: this run's headline table and one line per figure, then report/workflow.rst
    (lood.reporting.landing). The Snakefile's report: directive uses it once it exists."""
    input:
        correlation=expand(
            "results/{experiment}/figures/correlation.csv", experiment=EXPERIMENTS
        ),
        tables=get_landing_tables(),
        workflow="report/workflow.rst",
    output:
        landing="results/report/landing.rst",
    log:
        "logs/report/report_landing.log",
    params:
        experiments=EXPERIMENTS,
        activation=get_activation_pair() or [],
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/report_landing.py"
