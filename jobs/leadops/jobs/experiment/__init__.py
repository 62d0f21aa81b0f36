"""`leadops experiment`: evaluate an A/B experiment from its leads (CSV file or scorer URL)."""
