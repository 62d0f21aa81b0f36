{{/* Chart name, overridable. */}}
{{- define "leadops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: the release name, with the chart name unless it already holds it. */}}
{{- define "leadops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the operator pod; never change them after install. */}}
{{- define "leadops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "leadops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* The app.kubernetes.io/* labels every resource carries. */}}
{{- define "leadops.labels" -}}
{{ include "leadops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: leadops
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The metadata `annotations:` block from commonAnnotations; renders nothing when empty. */}}
{{- define "leadops.annotations" -}}
{{- with .Values.commonAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end -}}

{{- define "leadops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "leadops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference from {registry, repository, tag, digest}: the digest pins it when set,
the tag defaults to the chart's appVersion. Call with (dict "image" .Values.image "context" $).
*/}}
{{- define "leadops.image" -}}
{{- $image := .image -}}
{{- $ref := $image.repository -}}
{{- if $image.registry -}}
{{- $ref = printf "%s/%s" $image.registry $image.repository -}}
{{- end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $ref $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (default .context.Chart.AppVersion $image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/* The shipped alert rules (files/prometheus-rules.yaml) with prometheusRule.for applied;
an unknown alert name fails the install. */}}
{{- define "leadops.alertRules" -}}
{{- $rules := .Files.Get "files/prometheus-rules.yaml" | fromYaml -}}
{{- $known := list -}}
{{- range $group := $rules.groups -}}
{{- range $rule := $group.rules -}}
{{- $known = append $known $rule.alert -}}
{{- with get $.Values.prometheusRule.for $rule.alert -}}
{{- $_ := set $rule "for" . -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $name, $_ := .Values.prometheusRule.for -}}
{{- if not (has $name $known) -}}
{{- fail (printf "prometheusRule.for: %s is not a LeadOps alert (%s)" $name (join ", " $known)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $rules -}}
{{- end -}}

{{/* prometheusRule.for as the operator's LEADOPS_ALERT_FOR: ALERT=DURATION,... */}}
{{- define "leadops.alertFor" -}}
{{- $_ := include "leadops.alertRules" . -}}{{/* the same check of the names */}}
{{- $pairs := list -}}
{{- range $name := keys .Values.prometheusRule.for | sortAlpha -}}
{{- $pairs = append $pairs (printf "%s=%s" $name (get $.Values.prometheusRule.for $name)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
