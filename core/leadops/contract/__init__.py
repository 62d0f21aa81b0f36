"""The model contract: what a lead is, how it becomes features, the artifact format, drift."""
