"""Runspaces: the processes taskops runs or hosts (the engine, job workers, kernels), their
identity, their resources sampled with psutil, and the stop ladder."""
