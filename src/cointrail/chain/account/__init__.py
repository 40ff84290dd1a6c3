"""Account-model chains (Ethereum): addresses (EIP-55), keccak, block and transaction hashes,
and the decoding of JSON-RPC blocks, receipts, logs and traces into transfers.

    from cointrail.chain.account import iter_tx_transfers, iter_token_transfers
"""

from cointrail.chain.account.address import (
    ZERO_ADDRESS,
    keccak256,
    parse_eth_address,
    to_checksum_address,
)
from cointrail.chain.account.hashes import block_hash, encode_transaction, transaction_hash
from cointrail.chain.account.transfers import (
    TRANSFER_TOPIC,
    AccountTx,
    Transfer,
    TransferKind,
    decode_account_tx,
    decode_token_log,
    iter_geth_traces,
    iter_parity_traces,
    iter_token_transfers,
    iter_tx_transfers,
    iter_withdrawals,
)

__all__ = [
    "TRANSFER_TOPIC",
    "ZERO_ADDRESS",
    "AccountTx",
    "Transfer",
    "TransferKind",
    "block_hash",
    "decode_account_tx",
    "decode_token_log",
    "encode_transaction",
    "iter_geth_traces",
    "iter_parity_traces",
    "iter_token_transfers",
    "iter_tx_transfers",
    "iter_withdrawals",
    "keccak256",
    "parse_eth_address",
    "to_checksum_address",
    "transaction_hash",
]
