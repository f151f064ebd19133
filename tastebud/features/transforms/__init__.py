"""The Python sources of the built-in feature views (see ``tastebud/features/manifests``)."""
