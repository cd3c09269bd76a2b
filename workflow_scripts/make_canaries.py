import pandas as pd

from lood.data.canaries import make_canaries
from lood.io import load_npz, save_csv, save_npz
from lood.settings import CanarySettings

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
studied = pd.read_csv(snakemake.input.records)["record"].to_numpy()
canaries = CanarySettings.from_config(snakemake.params.canaries)
X, y, table = make_canaries(dataset["X"], dataset["y"], studied, canaries, snakemake.params.seed)
save_npz(snakemake.output.dataset, X=X, y=y, image_shape=dataset["image_shape"])
save_csv(snakemake.output.canaries, table)
log.info("canary dataset: %d records (%d real); canaries %s", len(X), len(dataset["X"]), table.to_dict("list"))
