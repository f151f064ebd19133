"""Interaction data: loaders, public dataset fetching, synthetic generation.

Layer (docs/architecture.md): may import ``stores`` and the core only.
"""
