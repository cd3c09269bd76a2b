import pandas as pd

from lood.checks import check_duplicate_records
from lood.io import load_npz, save_csv
from lood.mia import mia_table, stack_logits
from lood.settings import GroupSettings, MIASettings

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
# In-models per multiplicity, (n_in, R, C): m = 1 are the experiment's in-models; each record keeps its
# out-models (trained without it) and its MIA seed, so the half-splits are the same at every m.
in_by_m = {1: logits.in_record[:, pos]}
for f in snakemake.input.copies:
    c = load_npz(f)
    if list(c["records"]) != list(records):
        raise RuntimeError(
            f"{f} covers records {c['records'].tolist()}, expected {records.tolist()}: delete it and rerun"
        )
    in_by_m[int(c["m"])] = c["logits_record"].transpose(1, 0, 2)
parts = [
    mia_table(records, labels[pos], in_by_m[m], logits.out_record[pos], splits, snakemake.params.seed).assign(m=m)
    for m in groups.multiplicities
]
mia = pd.concat(parts, ignore_index=True)
save_csv(snakemake.output.mia, mia)
log.info("duplicates: median MIA AUC by m %s", mia.groupby("m")["auc"].median().round(3).to_dict())
