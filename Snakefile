# Leave-one-out distinguishability (LOOD), empirical and analytic, with the
# paper's figures. Run: `snakemake --cores all`; one figure: `snakemake fig_correlation`.
import os

from snakemake.utils import min_version, validate

from lood.config import fill_defaults


min_version("9.0")


configfile: "config.yaml"


# The report opens with this run's result once rule report_landing has written it (part of `rule all`).
LANDING = "results/report/landing.rst"


report: LANDING if os.path.exists(LANDING) else "report/workflow.rst"


validate(config, "schemas/config.schema.yaml")
# validate() is skipped inside cluster jobs (Snakemake >= 9.5): fill defaults everywhere.
fill_defaults(config, "schemas/config.schema.yaml")


# Rule priorities: what needs only the in-models (the learning gate, σ², the NNGP tables, influence)
# runs first (priority 3, 2, 1), while the out-models' training, the bulk of the work, fills the cores.
include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/mia.smk"
include: "rules/nngp.smk"
include: "rules/influence.smk"
include: "rules/figures.smk"
include: "rules/group.smk"
include: "rules/depth.smk"
include: "rules/audit.smk"
include: "rules/checks.smk"
include: "rules/size.smk"
include: "rules/privacy.smk"
include: "rules/replication.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        get_all_targets(),


onstart:
    # On SLURM: check every job against its partition before the first sbatch (lood/slurm/preflight.py).
    from lood.slurm.preflight import slurm_preflight

    slurm_preflight(workflow)
