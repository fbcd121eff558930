"""Helpers only the tests and bench/ use (importable as ``tests.support`` with the repo root on sys.path)."""
