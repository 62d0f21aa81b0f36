"""Batch jobs: train, synth, inspect, redact, pii-backfill. Each is `main(argv) -> int`."""
