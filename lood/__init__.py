"""Leave-one-out distinguishability (LOOD): empirical and NNGP-analytic measures.

Ye, Borovykh, Hayou & Shokri, "Leave-one-out Distinguishability in Machine
Learning", ICLR 2024. The Snakemake workflow in this repository calls these
modules; every formula is unit-tested without Snakemake.
"""

__version__ = "0.1.0"
