"""cointrail: self-hosted platform for countering the criminal use of cryptocurrency.

The public Python API; everything importable from here is covered by the stability promise
(see tests/unit/test_public_api.py). Internal modules may change without notice.
"""

from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.chain.utxo.block import Block, BlockHeader, decode_block
from cointrail.chain.utxo.hashes import BlockHash, Txid, Wtxid
from cointrail.chain.utxo.script import ScriptType
from cointrail.chain.utxo.tx import Transaction, TxIn, TxOut, decode_tx
from cointrail.errors import CointrailError, DecodeError

__version__ = "0.1.0"

__all__ = [
    "Block",
    "BlockHash",
    "BlockHeader",
    "ChainSpec",
    "CointrailError",
    "DecodeError",
    "ScriptType",
    "Transaction",
    "TxIn",
    "TxOut",
    "Txid",
    "Wtxid",
    "__version__",
    "decode_block",
    "decode_tx",
    "get_chain",
]
