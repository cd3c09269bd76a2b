import json

import pandas as pd

from lood.io import atomic_path
from lood.studies.audit_report import report_markdown

from _common import setup

log = setup(snakemake)
info = json.loads(open(snakemake.input.info).read())
text = report_markdown(pd.read_csv(snakemake.input.lood_all), info, snakemake.params.top)
with atomic_path(snakemake.output.report) as tmp:
    tmp.write_text(text)
