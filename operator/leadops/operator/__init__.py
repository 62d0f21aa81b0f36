"""The LeadModel controller (kopf) and the cluster-facing CLI helpers."""
