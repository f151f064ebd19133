"""Online experiments (docs/experiments.md): what an experiment is (``definition``), who
sees which variant (``assignment``), where definitions and exposures are kept, the metrics
read from events and exposures, and the statistics that judge them.

Layer (docs/architecture.md): may import data, the registry, the HTTP client, the stores
and the core; serving, the jobs, the simulator and the command line import it, never the
other way round.
"""
