"""Cluster profiles, per-user cluster credentials, the SSH transport and the SLURM adapter."""
