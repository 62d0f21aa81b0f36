"""A thin JSON REST layer over the kubernetes client: dicts in, dicts out, errors by status.

The operator deals in plain manifests (builders return dicts), so it talks to the API by
path rather than through the typed models. Impure module: the only one that does API I/O.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"

# kind -> (API prefix, plural); namespaced resources only.
RESOURCES: dict[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Event": ("/api/v1", "events"),
    "Pod": ("/api/v1", "pods"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices"),
    "CronJob": ("/apis/batch/v1", "cronjobs"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
    "ServiceMonitor": ("/apis/monitoring.coreos.com/v1", "servicemonitors"),
    "PrometheusRule": ("/apis/monitoring.coreos.com/v1", "prometheusrules"),
    "LeadModel": ("/apis/leadops.io/v1alpha1", "leadmodels"),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases"),
}


class ConfigError(Exception):
    """No in-cluster config and no usable kubeconfig."""


class KubeError(Exception):
    """The API answered with an error `status`, or (status 0) could not be reached at all."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Unreachable, overloaded or failing server-side: worth trying again shortly."""
        return self.status in {0, 429} or self.status >= 500


# What the operator waits for one API request: a single object or a namespace's list answers in
# milliseconds; a request held longer is held by an API server that lost etcd, and at the
# recovery it may stay stuck until this runs out while fresh requests are answered, so it
# bounds how late the operator notices the recovery (plus its 2 s retry).
OPERATOR_TIMEOUT_SECONDS = 5.0


def load_api_client(*, kubeconfig: str | None = None, context: str | None = None) -> Any:
    """In-cluster config when running in a Pod, else the kubeconfig ($KUBECONFIG)."""
    cfg = client.Configuration()
    # No silent re-sends: urllib3 would send a timed-out GET or PUT three more times (40 s per
    # call at a 10 s timeout) before we hear of it. Every caller retries on its own clock.
    cfg.retries = 0
    try:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration=cfg)
    except config.ConfigException:
        pass
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            # $KUBECONFIG read now: the client library reads it once, at import time.
            config_file=kubeconfig or os.environ.get("KUBECONFIG") or None,
            context=context,
            client_configuration=cfg,
        )
    except (config.ConfigException, OSError) as exc:
        raise ConfigError(str(exc)) from exc
    return client.ApiClient(configuration=cfg)


def _message(raw: bytes) -> str:
    """The apiserver's Status message (it names the field and the rule that failed)."""
    try:
        return str(json.loads(raw).get("message", ""))[:500]
    except (ValueError, AttributeError):
        return raw[:200].decode("utf-8", "replace")


class Kube:
    def __init__(self, api_client: Any, *, timeout: float = 10.0) -> None:
        self.api = api_client
        self.timeout = timeout

    @staticmethod
    def path(kind: str, namespace: str, name: str | None = None, *, sub: str = "") -> str:
        prefix, plural = RESOURCES[kind]
        out = f"{prefix}/namespaces/{namespace}/{plural}"
        if name is not None:
            out += f"/{name}"
        if sub:
            out += f"/{sub}"
        return out

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        answer: bool = True,
    ) -> Any:
        """The decoded answer; None without one, or with `answer=False` (left undecoded)."""
        method_, url, headers, payload, post = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(
                method_, url, header_params=headers, body=payload, post_params=post,
                _request_timeout=self.timeout,
            )  # fmt: skip
        except ApiException as exc:
            raise KubeError(int(exc.status or 0), f"{method} {path}: {exc.reason}") from exc
        except HTTPError as exc:  # refused, reset, timed out: the API is not there right now
            raise KubeError(0, f"{method} {path}: API unreachable ({type(exc).__name__})") from exc
        raw = response.read()
        if response.status >= 400:
            raise KubeError(int(response.status), f"{method} {path}: {_message(raw)}")
        return json.loads(raw) if raw and answer else None

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.request("GET", self.path(kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def list(self, kind: str, namespace: str, *, selector: str = "") -> list[dict[str, Any]]:
        query = [("labelSelector", selector)] if selector else []
        found = self.request("GET", self.path(kind, namespace), query=query)
        return list(found.get("items") or [])

    def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """POST; `dry_run`: the API validates and admits it but stores nothing."""
        meta = manifest["metadata"]
        out: dict[str, Any] = self.request(
            "POST",
            self.path(manifest["kind"], meta["namespace"]),
            body=dict(manifest),
            query=[("dryRun", "All")] if dry_run else None,
        )
        return out

    def create_unread(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> None:
        """`create` without decoding the object the API answers with. The operator never reads
        its children back from a create, and decoding them (a Deployment is some 6 KB of JSON)
        was a sixth of its CPU while a fleet of new LeadModels was made."""
        meta = manifest["metadata"]
        self.request(
            "POST",
            self.path(manifest["kind"], meta["namespace"]),
            body=dict(manifest),
            query=[("dryRun", "All")] if dry_run else None,
            answer=False,
        )

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        sub: str = "",
        dry_run: bool = False,
    ) -> None:
        """JSON merge patch; the patched object the API answers with is not decoded (unused)."""
        self.request(
            "PATCH",
            self.path(kind, namespace, name, sub=sub),
            body=dict(patch),
            content_type=MERGE_PATCH,
            query=[("dryRun", "All")] if dry_run else None,
            answer=False,
        )

    def delete(self, kind: str, namespace: str, name: str, *, uid: str = "") -> bool:
        """DELETE; with `uid`, only that very object (a same-named newcomer is left alone)."""
        body = {"preconditions": {"uid": uid}} if uid else None
        try:
            self.request("DELETE", self.path(kind, namespace, name), body=body)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def has_api(self, group_version: str, plural: str) -> bool:
        try:
            found = self.request("GET", f"/apis/{group_version}")
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return any(r.get("name") == plural for r in found.get("resources") or [])


def crd_established(
    api_client: Any, *, name: str = "leadmodels.leadops.io", timeout: float = 60
) -> None:
    """Wait until the API server serves a CRD (Established=True)."""
    import time  # noqa: PLC0415 (only the installer paths wait)

    api = Kube(api_client)
    deadline = time.monotonic() + timeout
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    while time.monotonic() < deadline:
        try:
            crd = api.request("GET", path)
        except KubeError as exc:
            if exc.status != 404:
                raise
            crd = None
        conditions = ((crd or {}).get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise TimeoutError(f"CRD {name} not Established after {timeout}s")
