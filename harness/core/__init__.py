"""The neutral lower layer: records, processes, profiles, locks and run records that every stage
shares. It imports no other harness stage (tests/test_layers.py), so data, frameworks, parse,
evaluation, report and engine can all build on it without importing each other."""
