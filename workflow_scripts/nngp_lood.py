import pandas as pd

from lood.analytic.tables import lood_table
from lood.io import save_csv

from _common import nngp_job

log, nngp, sigma2, gp = nngp_job(snakemake)  # sigma2: chosen by rule choose_sigma2
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
table = lood_table(gp, records, nngp.auc_samples, snakemake.params.seed).assign(sigma2=sigma2)
save_csv(snakemake.output.lood, table)
log.info("KL-LOOD over %d records: median %.4g, max %.4g", len(table), table["kl"].median(), table["kl"].max())
