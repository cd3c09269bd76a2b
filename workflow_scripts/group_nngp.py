import pandas as pd

from lood.checks import check_duplicate_records
from lood.group import duplicate_table, neighbour_table
from lood.io import load_npz, save_csv
from lood.nngp import prepare
from lood.settings import Arch, GroupSettings, NNGPSettings
from lood.sigma2 import read_sigma2

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
studied = pd.read_csv(snakemake.input.records)["record"].to_numpy()
nngp = NNGPSettings.from_config(snakemake.params.nngp)
groups = GroupSettings.from_config(snakemake.params.groups)
sigma2 = read_sigma2(pd.read_csv(snakemake.input.sigma2))  # the experiment's sigma2 (rule choose_sigma2)
gp = prepare(dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), sigma2, nngp.block_size)
duplicated = check_duplicate_records(groups.duplicate_records, groups.duplicate_count, studied, gp.fit.n)
duplicates = duplicate_table(gp, duplicated, groups.multiplicities, nngp.auc_samples, snakemake.params.seed)
save_csv(snakemake.output.duplicates, duplicates.assign(sigma2=sigma2))
neighbours = neighbour_table(gp, studied, groups.neighbour_sizes)
save_csv(snakemake.output.neighbours, neighbours.assign(sigma2=sigma2))
log.info("duplicates: median KL-LOOD by m %s", duplicates.groupby("m")["kl"].median().round(4).to_dict())
log.info(
    "neighbour groups: median KL ratio (group / sum of singles) by k %s",
    neighbours.groupby("k")["ratio"].median().round(3).to_dict(),
)
