from lood.analytic.tables import lood_all_table
from lood.io import save_csv

from _common import nngp_job

log, nngp, sigma2, gp = nngp_job(snakemake)  # sigma2: chosen by rule choose_sigma2
table = lood_all_table(gp).assign(sigma2=sigma2)
save_csv(snakemake.output.lood_all, table)
log.info(
    "KL-LOOD of all %d training records: median %.4g, max %.4g", len(table), table["kl"].median(), table["kl"].max()
)
