import pandas as pd

from lood.io import save_npz
from lood.settings import GroupSettings
from lood.studies.group_networks import group_out_arrays

from _common import training_job

log, _, job = training_job(snakemake)
studied = pd.read_csv(snakemake.input.records)["record"].to_numpy()
groups = GroupSettings.from_config(snakemake.params.groups)
arrays = group_out_arrays(job, studied, snakemake.wildcards.kind, groups.network_sizes, groups.network_count, log)
save_npz(snakemake.output.logits, **arrays)
