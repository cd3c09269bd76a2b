import pandas as pd

from lood.empirical.logits import stack_logits
from lood.io import load_npz, save_csv
from lood.records import check_duplicate_records
from lood.settings import GroupSettings, MIASettings
from lood.studies.group_attack import duplicate_mia_table
from lood.studies.group_networks import in_logits_by_copies

from _common import setup

log = setup(snakemake)
table = pd.read_csv(snakemake.input.records)
studied, labels = table["record"].to_numpy(), table["label"].to_numpy()
groups = GroupSettings.from_config(snakemake.params.groups)
splits = MIASettings.from_config(snakemake.params.mia).splits
logits = stack_logits(
    [load_npz(f) for f in snakemake.input.in_logits], [load_npz(f) for f in snakemake.input.out_logits], studied
)
n = len(load_npz(snakemake.input.dataset)["y"])
records = check_duplicate_records(groups.duplicate_records, groups.duplicate_count, studied, n)
pos = pd.Series(range(len(studied)), index=studied)[records].to_numpy()
in_by_m = in_logits_by_copies(logits.in_record[:, pos], [load_npz(f) for f in snakemake.input.copies], records)
in_by_m = {m: in_by_m[m] for m in groups.multiplicities}
mia = duplicate_mia_table(records, labels[pos], in_by_m, logits.out_record[pos], splits, snakemake.params.seed)
save_csv(snakemake.output.mia, mia)
log.info("duplicates: median MIA AUC by m %s", mia.groupby("m")["auc"].median().round(3).to_dict())
