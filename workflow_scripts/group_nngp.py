import pandas as pd

from lood.io import save_csv
from lood.records import check_duplicate_records
from lood.settings import GroupSettings
from lood.studies.groups import duplicate_table, neighbour_table

from _common import nngp_job

log, nngp, sigma2, gp = nngp_job(snakemake)  # sigma2: the experiment's (rule choose_sigma2)
studied = pd.read_csv(snakemake.input.records)["record"].to_numpy()
groups = GroupSettings.from_config(snakemake.params.groups)
duplicated = check_duplicate_records(groups.duplicate_records, groups.duplicate_count, studied, gp.fit.n)
duplicates = duplicate_table(gp, duplicated, groups.multiplicities, nngp.auc_samples, snakemake.params.seed)
save_csv(snakemake.output.duplicates, duplicates.assign(sigma2=sigma2))
neighbours = neighbour_table(
    gp, studied, groups.neighbour_sizes, groups.neighbour_kinds, snakemake.params.seed, nngp.auc_samples
)
save_csv(snakemake.output.neighbours, neighbours.assign(sigma2=sigma2))
log.info("duplicates: median KL-LOOD by m %s", duplicates.groupby("m")["kl"].median().round(4).to_dict())
log.info(
    "neighbour groups: median KL ratio (group / sum of singles) by kind and k %s",
    neighbours.groupby(["kind", "k"])["ratio"].median().round(3).to_dict(),
)
