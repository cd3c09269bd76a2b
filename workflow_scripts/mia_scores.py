import pandas as pd

from lood.empirical.logits import stack_logits
from lood.empirical.mia import AttackedRecords, half_attacks, mia_landscape_table, mia_table
from lood.empirical.model_bootstrap import model_scores
from lood.io import load_npz, save_csv, save_npz

from _common import setup

log = setup(snakemake)
table = pd.read_csv(snakemake.input.records)
records, labels = table["record"].to_numpy(), table["label"].to_numpy()
t = load_npz(snakemake.input.probes)["t"]
logits = stack_logits(
    [load_npz(f) for f in snakemake.input.in_logits], [load_npz(f) for f in snakemake.input.out_logits], records
)
splits, seed = snakemake.params.splits, snakemake.params.seed
attacked = AttackedRecords(records, labels, logits.in_record, logits.out_record)
mia = mia_table(attacked, splits, seed)
save_csv(snakemake.output.mia, mia)
landscape = mia_landscape_table(records, labels, t, logits.in_probe, logits.out_probe, splits, seed)
save_csv(snakemake.output.landscape, landscape)
halves = half_attacks(attacked, splits, seed, snakemake.params.repeats)
save_csv(snakemake.output.halves, halves)
# Every model's cross-fitted score, for the two-level bootstrap of the correlation figure.
save_npz(snakemake.output.scores, **model_scores(records, logits.in_record, logits.out_record)._asdict())
log.info("MIA AUC over %d records: mean %.3f, max %.3f", len(mia), mia["auc"].mean(), mia["auc"].max())
