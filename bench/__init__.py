"""Benchmarks of loraledger against the system it replaces and the raw limits underneath.

Run from the repository root: `python -m bench.run_all` (or one of `bench.sync_bench`,
`bench.webhook_bench`, `bench.rebuild_bench`). Each prints a table and writes
`bench/results/<name>.json`. See BENCHMARKS.md.
"""
