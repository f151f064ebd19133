"""Interaction data: loaders, public dataset fetching, synthetic generation."""
