"""Shared fixtures. Each service's harness lives in tests/fixtures/ and is loaded here."""

pytest_plugins = [
    "tests.fixtures.logging_hygiene",
    "tests.fixtures.redis_server",
    "tests.fixtures.redis_cluster",
    "tests.fixtures.s3_server",
    "tests.fixtures.k8s_cluster",
    "tests.fixtures.tools",
    "tests.fixtures.model_artifact",
    "tests.fixtures.shared_data",
    "tests.fixtures.artifacts",
    "tests.fixtures.scorer",
    "tests.fixtures.provider_twins",
    "tests.fixtures.followups",
]
