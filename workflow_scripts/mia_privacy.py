import pandas as pd

from lood.empirical.logits import stack_logits
from lood.empirical.mia import AttackedRecords
from lood.empirical.roc import privacy_tables
from lood.io import load_npz, save_csv
from lood.settings import PrivacySettings

from _common import setup

log = setup(snakemake)
table = pd.read_csv(snakemake.input.records)
records, labels = table["record"].to_numpy(), table["label"].to_numpy()
logits = stack_logits(
    [load_npz(f) for f in snakemake.input.in_logits], [load_npz(f) for f in snakemake.input.out_logits], records
)
privacy = PrivacySettings.from_config(snakemake.params.privacy)
pooled, roc, per_record = privacy_tables(
    AttackedRecords(records, labels, logits.in_record, logits.out_record),
    snakemake.params.loss,
    privacy,
    snakemake.params.seed,
)
save_csv(snakemake.output.pooled, pooled)
save_csv(snakemake.output.roc, roc)
save_csv(snakemake.output.records, per_record)
