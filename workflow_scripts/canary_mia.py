import numpy as np
import pandas as pd

from lood.empirical.mia import AttackedRecords, mia_table
from lood.io import load_npz, save_csv
from lood.settings import MIASettings

from _common import setup

log = setup(snakemake)
canaries = pd.read_csv(snakemake.input.canaries)
records = canaries["record"].to_numpy()
in_logits, out_logits = load_npz(snakemake.input.in_logits), load_npz(snakemake.input.out_logits)
for name, part in (("in", in_logits), ("out", out_logits)):
    if not np.array_equal(part["records"], records):
        raise RuntimeError(
            f"canary {name}-models cover rows {part['records'].tolist()}, expected {records.tolist()}: "
            "delete them and rerun"
        )
splits = MIASettings.from_config(snakemake.params.mia).splits
attacked = AttackedRecords(
    records, canaries["label"].to_numpy(), in_logits["logits_record"], out_logits["logits_record"]
)
mia = mia_table(attacked, splits, snakemake.params.seed)
mia = mia.merge(canaries[["record", "kind"]], on="record", validate="one_to_one")
save_csv(snakemake.output.mia, mia)
log.info("canary MIA AUC by kind: %s", mia.groupby("kind")["auc"].median().round(3).to_dict())
