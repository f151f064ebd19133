"""The ``tastebud`` command: one module per command group.

Layer (docs/architecture.md): the top; may import any part, and nothing imports it.
"""
