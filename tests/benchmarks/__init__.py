"""Tests of benchmarks/ (mirrors the folder)."""
