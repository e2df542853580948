"""Command-line interface: one entry point, ``cracksam``, with one module per sub-command."""
