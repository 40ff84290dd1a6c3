"""The web investigator: static files (plain JS modules, Cytoscape.js vendored at build time),
served by the API application at ``/``."""
