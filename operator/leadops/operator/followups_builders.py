"""Pure builders for `spec.followUps`: the follow-ups config, its ConfigMap, the worker
Deployment (delivery worker + webhooks app) and the webhooks Service.

The config is the file `leadops followups run|webhooks --config` reads (docs/followups.md):
credentials in it are only paths of mounted Secret files, so the ConfigMap holds no secret.
The Pod is ready for the restricted Pod Security Standard: non-root, seccomp RuntimeDefault,
every capability dropped, read-only root, no service account token, resources always set.
Pure module (the same rules as `builders`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from leadops.operator import builders, spec

CONFIG_DIR = "/etc/leadops/followups"
CONFIG_KEY = "config.json"
SECRETS_DIR = "/var/run/secrets/leadops/followups"
REDIS_DIR = "/var/run/secrets/leadops/redis"
KEY_SALT_DIR = "/var/run/secrets/leadops/key-salt"
WEBHOOKS_PORT = 8090
METRICS_PORT = 9090
RUN_AS = 10001
COMPONENT = "followups"
# Pod annotation: the config's digest, so a changed spec.followUps rolls the Pods.
ANN_CONFIG_DIGEST = "leadops.io/followups-config-digest"
DEFAULT_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
DEFAULT_LIMITS = {"memory": "512Mi"}


def name(leadmodel: str) -> str:
    """Deployment, Service and ConfigMap: `<name>-followups` (49 characters at most)."""
    return f"{leadmodel}-followups"


def selector(owner: builders.Owner) -> dict[str, str]:
    return {"app.kubernetes.io/instance": owner.name, "app.kubernetes.io/component": COMPONENT}


def child_keys(leadmodel: str, *, prometheus_operator: bool) -> list[tuple[str, str]]:
    """(kind, name) of the children `children()` makes, in its order."""
    n = name(leadmodel)
    out = [("ConfigMap", n), ("Service", n), ("Deployment", n)]
    if prometheus_operator:
        out.append(("ServiceMonitor", n))
    return out


def _metadata(owner: builders.Owner) -> dict[str, Any]:
    return {
        "name": name(owner.name),
        "namespace": owner.namespace,
        "labels": builders.labels(owner, COMPONENT),
        "ownerReferences": [owner.reference()],
    }


def _secret_names(fu: spec.FollowUps) -> list[str]:
    return sorted({ref.name for ref in fu.secret_refs().values()})


def _path(ref: spec.SecretKeyRef | None) -> str:
    if ref is None:  # FollowUps.semantic_errors() refuses such a spec before any build
        raise ValueError("a provider lacks its credential's Secret reference")
    return f"{SECRETS_DIR}/{ref.name}/{ref.key}"


def _provider(p: spec.FollowUpProvider) -> dict[str, Any]:
    out: dict[str, Any] = {"type": p.type.value, "name": p.name or p.type.value, "from": p.sender}
    if p.type is spec.FollowUpProviderType.TWILIO:
        out |= {"accountSid": p.account_sid, "authTokenFile": _path(p.auth_token_secret_ref)}
    elif p.type is spec.FollowUpProviderType.SENDGRID:
        out["apiKeyFile"] = _path(p.api_key_secret_ref)
    else:
        out |= {"host": p.host, "port": p.port, "starttls": p.starttls}
        if p.username is not None:
            out["username"] = p.username
        if p.password_secret_ref is not None:
            out["passwordFile"] = _path(p.password_secret_ref)
    return out


def _tenant(t: spec.FollowUpTenant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "vault": {
            "current": t.vault.current,
            "keyFiles": {k.id: _path(k.secret_ref) for k in t.vault.keys},
        },
        "quietHours": {"start": t.quiet_hours.start, "end": t.quiet_hours.end},
        "rules": [
            {
                "minScore": r.min_score,
                "channel": r.channel.value,
                "template": r.template,
                "delayMinutes": r.delay_minutes,
                **(
                    {"whatsappContentSid": r.whatsapp_content_sid} if r.whatsapp_content_sid else {}
                ),
            }
            for r in t.rules
        ],
        "templates": {tpl.name: _template(tpl) for tpl in t.templates},
        "providers": {
            channel: [_provider(p) for p in getattr(t.providers, channel)]
            for channel in spec.FOLLOW_UP_CHANNELS
            if getattr(t.providers, channel)
        },
    }
    if t.rate_limit_per_second is not None:
        out["rateLimitPerSecond"] = t.rate_limit_per_second
    hooks = {
        alias: _path(ref)
        for alias, ref in (
            ("sendgridPublicKeyFile", t.webhooks.sendgrid_public_key_secret_ref),
            ("whatsappAppSecretFile", t.webhooks.whatsapp_app_secret_secret_ref),
            ("whatsappVerifyTokenFile", t.webhooks.whatsapp_verify_token_secret_ref),
        )
        if ref is not None
    }
    if hooks:
        out["webhooks"] = hooks
    if t.email_replies is not None:
        out["emailReplies"] = {
            "domain": t.email_replies.domain,
            "inboundParseCredentialsFile": _path(t.email_replies.credentials_secret_ref),
        }
    return out


def _template(tpl: spec.FollowUpTemplate) -> dict[str, str]:
    """Inline text; a ConfigMap template's text is put in by `followups_templates.resolve`
    (the operator read and validated it), so the worker's config is one consistent file."""
    if tpl.body is None:
        raise ValueError(f"template {tpl.name!r}: its ConfigMap text was not resolved")
    return {"body": tpl.body, **({"subject": tpl.subject} if tpl.subject else {})}


def config(fu: spec.FollowUps) -> dict[str, Any]:
    """`spec.followUps` as the worker's config (leadops.followups.config), paths for secrets."""
    return {
        "horizonHours": fu.horizon_hours,
        "maxAttempts": fu.max_attempts,
        "backoffBaseSeconds": fu.backoff_base_seconds,
        "backoffMaxSeconds": fu.backoff_max_seconds,
        "statusCallbackBase": fu.status_callback_base,
        "tenants": {t.name: _tenant(t) for t in fu.tenants},
    }


def config_text(fu: spec.FollowUps) -> str:
    return json.dumps(config(fu), indent=1, sort_keys=True) + "\n"


def configmap(owner: builders.Owner, fu: spec.FollowUps) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner),
        "data": {CONFIG_KEY: config_text(fu)},
    }


def service(owner: builders.Owner) -> dict[str, Any]:
    """Where providers post callbacks (expose it through an Ingress or Gateway of your own)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(owner),
            "ports": [
                {"name": "webhooks", "port": WEBHOOKS_PORT, "targetPort": "webhooks"},
                {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"},
            ],
        },
    }


def _resources(res: spec.Resources) -> dict[str, Any]:
    """The spec's resources over the defaults: a Pod without them may starve its node."""
    return {
        "requests": dict(sorted({**DEFAULT_REQUESTS, **res.requests}.items())),
        "limits": dict(sorted({**DEFAULT_LIMITS, **res.limits}.items())),
    }


def _container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _secret_volume(volume: str, secret: str) -> dict[str, Any]:
    # 0440 with fsGroup: readable by the Pod's group only, never world-readable.
    return {"name": volume, "secret": {"secretName": secret, "defaultMode": 0o440}}


def _volumes(lm: spec.LeadModelSpec, fu: spec.FollowUps) -> tuple[list[Any], list[Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": "", "defaultMode": 0o444}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
        _secret_volume("redis", lm.redis.url_secret_ref.name),
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (an emptyDir of the Pod's own)
        {"name": "redis", "mountPath": REDIS_DIR, "readOnly": True},
    ]
    if lm.pii.key_salt_secret_ref is not None:
        volumes.append(_secret_volume("key-salt", lm.pii.key_salt_secret_ref.name))
        mounts.append({"name": "key-salt", "mountPath": KEY_SALT_DIR, "readOnly": True})
    for i, secret in enumerate(_secret_names(fu)):
        volumes.append(_secret_volume(f"fu-secret-{i}", secret))
        mounts.append(
            {"name": f"fu-secret-{i}", "mountPath": f"{SECRETS_DIR}/{secret}", "readOnly": True}
        )
    return volumes, mounts


def _env(lm: spec.LeadModelSpec) -> list[dict[str, Any]]:
    ref = lm.redis.url_secret_ref
    env = [{"name": "LEADOPS_REDIS_URL_FILE", "value": f"{REDIS_DIR}/{ref.key}"}]
    if lm.pii.key_salt_secret_ref is not None:
        salt = lm.pii.key_salt_secret_ref
        env.append({"name": "LEADOPS_KEY_SALT_FILE", "value": f"{KEY_SALT_DIR}/{salt.key}"})
    return env


def config_digest(fu: spec.FollowUps) -> str:
    return "sha256:" + hashlib.sha256(config_text(fu).encode()).hexdigest()


def scorer_files(
    owner: builders.Owner, fu: spec.FollowUps
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """What the scorer needs to schedule follow-ups: env (LEADOPS_FOLLOWUPS_CONFIG), volumes
    and mounts of the config and of the vault keys only (at the paths the config names; no
    provider credential reaches the scorer)."""
    vault_keys: dict[str, set[str]] = {}
    for tenant in fu.tenants:
        for key in tenant.vault.keys:
            vault_keys.setdefault(key.secret_ref.name, set()).add(key.secret_ref.key)
    volumes: list[dict[str, Any]] = [
        {"name": "followups-config", "configMap": {"name": name(owner.name)}}
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "followups-config", "mountPath": CONFIG_DIR, "readOnly": True}
    ]
    for i, secret in enumerate(sorted(vault_keys)):
        items = [{"key": k, "path": k} for k in sorted(vault_keys[secret])]
        volumes.append(
            {"name": f"followups-vault-{i}", "secret": {"secretName": secret, "items": items}}
        )
        mounts.append(
            {
                "name": f"followups-vault-{i}",
                "mountPath": f"{SECRETS_DIR}/{secret}",
                "readOnly": True,
            }
        )
    env = [{"name": "LEADOPS_FOLLOWUPS_CONFIG", "value": f"{CONFIG_DIR}/{CONFIG_KEY}"}]
    return env, volumes, mounts


def deployment(owner: builders.Owner, lm: spec.LeadModelSpec, *, jobs: str = "") -> dict[str, Any]:
    """The delivery worker and the webhooks app, one Pod, `spec.followUps.replicas` of them.
    Its image: `spec.followUps.image`, else the jobs image (`jobs`: LEADOPS_JOBS_IMAGE), which
    holds the provider SDKs; the scorer image does not."""
    fu = lm.follow_ups
    if fu is None:
        raise ValueError("spec.followUps is not set")
    image = fu.image or builders.jobs_image(lm.scorer.image, jobs)
    volumes, mounts = _volumes(lm, fu)
    volumes[0]["configMap"]["name"] = name(owner.name)
    config_path = f"{CONFIG_DIR}/{CONFIG_KEY}"

    def common() -> dict[str, Any]:  # fresh objects per container (no shared dicts)
        return {
            "image": image,
            "env": _env(lm),
            "resources": _resources(fu.resources),
            "securityContext": _container_security(),
            "volumeMounts": [dict(m) for m in mounts],
        }

    worker = {
        "name": "worker",
        "command": ["leadops", "followups", "run"],
        "args": [
            "--config",
            config_path,
            "--metrics-host",
            "0.0.0.0",  # noqa: S104 (in a Pod)
            "--metrics-port",
            str(METRICS_PORT),
        ],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 10},
        "livenessProbe": {
            "tcpSocket": {"port": "metrics"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        **common(),
    }
    webhooks = {
        "name": "webhooks",
        "command": ["leadops", "followups", "webhooks"],
        "args": [
            "--config",
            config_path,
            "--host",
            "0.0.0.0",  # noqa: S104 (in a Pod)
            "--port",
            str(WEBHOOKS_PORT),
        ],
        "ports": [{"name": "webhooks", "containerPort": WEBHOOKS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "webhooks"}, "periodSeconds": 5},
        "livenessProbe": {
            "tcpSocket": {"port": "webhooks"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        **common(),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner),
        "spec": {
            "replicas": fu.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(owner)},
            "template": {
                "metadata": {
                    "labels": builders.labels(owner, COMPONENT),
                    "annotations": {ANN_CONFIG_DIGEST: config_digest(fu)},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    # SIGTERM stops the worker between sends; in-flight entries are reclaimed.
                    "terminationGracePeriodSeconds": 30,
                    "containers": [worker, webhooks],
                    "volumes": volumes,
                },
            },
        },
    }


def service_monitor(owner: builders.Owner) -> dict[str, Any]:
    """Both containers' metrics: the worker's sends (metrics) and the callbacks (webhooks)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(owner),
        "spec": {
            "selector": {"matchLabels": selector(owner)},
            "endpoints": [
                {"port": "metrics", "path": "/metrics", "interval": "30s"},
                {"port": "webhooks", "path": "/metrics", "interval": "30s"},
            ],
        },
    }


def children(
    owner: builders.Owner, lm: spec.LeadModelSpec, *, prometheus_operator: bool, jobs: str = ""
) -> list[dict[str, Any]]:
    """The follow-ups' children (none without spec.followUps), in `child_keys()` order."""
    if lm.follow_ups is None:
        return []
    out = [configmap(owner, lm.follow_ups), service(owner), deployment(owner, lm, jobs=jobs)]
    if prometheus_operator:
        out.append(service_monitor(owner))
    return out
