"""Address clustering: union-find over common-input links and the heuristics that feed it."""
