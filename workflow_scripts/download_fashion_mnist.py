from pathlib import Path

from lood.data.sources import FASHION_MNIST_FILES, download_fashion_mnist

from _common import setup

log = setup(snakemake)
dest = Path(snakemake.output.files[0]).parent
paths = download_fashion_mnist(dest, snakemake.params.url, FASHION_MNIST_FILES)
log.info("Fashion-MNIST files verified against the publisher's MD5s: %s", [str(p) for p in paths])
