"""Risk measures over the spend graph: exposure of addresses and clusters to categories."""
