import numpy as np
import pandas as pd
from _common import setup

from lood.io import load_npz, save_csv
from lood.mia import mia_landscape_table, mia_table

log = setup(snakemake)
table = pd.read_csv(snakemake.input.records)
records, labels = table["record"].to_numpy(), table["label"].to_numpy()
t = load_npz(snakemake.input.probes)["t"]
chunks = [load_npz(f) for f in snakemake.input.in_logits]
groups = [load_npz(f) for f in snakemake.input.out_logits]
in_record = np.concatenate([c["logits_record"] for c in chunks])
in_probe = np.concatenate([c["logits_probe"] for c in chunks])
out_records = np.concatenate([g["records"] for g in groups])
if not np.array_equal(out_records, records):
    raise RuntimeError(f"out-model groups cover records {out_records.tolist()}, expected {records.tolist()}: delete results/*/nn/out and rerun")
out_record = np.concatenate([g["logits_record"] for g in groups])
out_probe = np.concatenate([g["logits_probe"] for g in groups])
splits, seed = snakemake.params.splits, snakemake.params.seed
mia = mia_table(records, labels, in_record, out_record, splits, seed)
save_csv(snakemake.output.mia, mia)
save_csv(snakemake.output.landscape, mia_landscape_table(records, labels, t, in_probe, out_probe, splits, seed))
log.info("MIA AUC over %d records: mean %.3f, max %.3f", len(mia), mia["auc"].mean(), mia["auc"].max())
