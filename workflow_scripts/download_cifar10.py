from lood.data.sources import download_cifar10

from _common import setup

log = setup(snakemake)
path = download_cifar10(snakemake.output.archive, url=snakemake.params.url, md5=snakemake.params.md5)
log.info("CIFAR-10 archive verified at %s", path)
