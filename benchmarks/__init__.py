"""Speed measurements of the serving path: the raw model, the service and a naive baseline."""
