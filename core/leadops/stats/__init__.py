"""Experiment statistics: pure functions over counts and scores, no Kubernetes, no scorer.

- `sequential`: Lan-DeMets O'Brien-Fleming alpha spending and its group-sequential boundaries.
- `conversion`: the two-proportion z statistic a look compares against a boundary.
- `paired_auc`: DeLong's paired AUC difference of two models scored on the same leads.
- `srm`: the sample-ratio-mismatch chi-square test.
- `maturity`: which leads count (older than the window) and whether they converted.
- `verdict`: the experiment's decision at one look (promote, abort, continue, ...).

Used by the CLI, evaluation Jobs and the benchmarks' simulations; the operator never imports
it (its image has no numpy or scipy) and acts on the JSON the evaluation prints.
"""
