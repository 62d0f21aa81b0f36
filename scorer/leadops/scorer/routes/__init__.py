"""HTTP routes, one module per area: score (/v1), ops (/ops, keyed), health (/health, /ready)."""
