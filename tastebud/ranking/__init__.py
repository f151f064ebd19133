"""The recommendation path: candidates, blend, re-ranking, filters, cold start, serving."""
