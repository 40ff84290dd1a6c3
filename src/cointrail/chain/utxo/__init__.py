"""Bitcoin-family (UTXO) chains: block and transaction codec, scripts, addresses, blk files."""
