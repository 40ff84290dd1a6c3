"""Chain families and their codecs; `spec` holds the registry of every supported chain."""

from cointrail.chain.spec import ChainSpec, all_chains, get_chain

__all__ = ["ChainSpec", "all_chains", "get_chain"]
