"""User-facing interfaces over the library: the command line (``cli``), later the HTTP API."""
