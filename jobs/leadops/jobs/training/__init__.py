"""`leadops train`: `command` (argv, files, exit codes) reads an outcomes CSV with
`outcomes_csv` and fits the model with `fit` (table in, unsealed artifact out)."""
