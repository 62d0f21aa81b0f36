"""`leadops pii-backfill`: scrub PII from chat memory and lead records already in Redis.

`command` (argv, exit codes, summary) drives a `scrubber.Scrubber` run, which reads keys in
rounds, screens values (`leadops.pii.screen`), runs the detector (`detection_pool`), and
rewrites by compare-and-set (`cas_scripts`) at a bounded rate (`pacer`); `cpu_quota` sizes the
pool and `stats` counts what was seen and changed.
"""
