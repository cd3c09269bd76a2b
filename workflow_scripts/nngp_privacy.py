import pandas as pd

from lood.analytic.privacy import nngp_privacy_tables
from lood.io import save_csv
from lood.settings import PrivacySettings

from _common import nngp_job

log, nngp, sigma2, gp = nngp_job(snakemake)  # sigma2: chosen by rule choose_sigma2
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
privacy = PrivacySettings.from_config(snakemake.params.privacy)
table, roc = nngp_privacy_tables(gp, records, privacy, snakemake.params.n_out)
save_csv(snakemake.output.records, table.assign(sigma2=sigma2))
save_csv(snakemake.output.roc, roc)
