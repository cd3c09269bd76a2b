import pandas as pd

from lood.figures.privacy import privacy_figure
from lood.figures.style import save_figure
from lood.io import save_csv

from _common import setup

log = setup(snakemake)
fig, records, summary, agreement = privacy_figure(
    pd.read_csv(snakemake.input.pooled),
    pd.read_csv(snakemake.input.roc),
    pd.read_csv(snakemake.input.records),
    pd.read_csv(snakemake.input.predicted),
    pd.read_csv(snakemake.input.predicted_roc),
    snakemake.params.fprs,
    snakemake.params.bootstrap,
    snakemake.params.seed,
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.records, records)
save_csv(snakemake.output.summary, summary)
save_csv(snakemake.output.agreement, agreement)
log.info("\n%s\n%s", summary.to_string(), agreement.to_string())
