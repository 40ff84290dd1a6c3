"""The ``cointrail`` command line: `main.app` is the entry point; one module per command group.

Conventions every command follows (see `common`): machine output (JSON) goes plainly to stdout
as exactly one document; human output is rendered with Rich; an expected failure (a
`CointrailError`) prints one ``error: <message>`` line on stderr and exits with the code of its
family (`cointrail.errors.exit_code_for`), with a traceback only under ``--debug``.
"""
