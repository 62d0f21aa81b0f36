"""The scorer: a FastAPI service that scores leads, records outcomes and serves /ops/*."""
