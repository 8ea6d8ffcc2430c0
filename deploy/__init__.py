"""The deployment on loopback: `make cluster` (deploy/cluster.py)."""
