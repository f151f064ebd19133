"""The ``tastebud`` command: one module per command group."""
