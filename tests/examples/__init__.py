"""Tests mirroring the module tree (one folder per package)."""
