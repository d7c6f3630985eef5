{{/* Names ------------------------------------------------------------------------------------------------------ */}}

{{- define "tfscore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tfscore.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tfscore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tfscore.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels: include "tfscore.labels" (dict "ctx" $ "component" "operator") */}}
{{- define "tfscore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tfscore.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tfscore.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tfscore.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: tfscore
{{- end }}

{{/* Images: repository@digest when pinned, else repository:tag (tag defaults to appVersion).
     include "tfscore.image" (dict "image" .Values.image "ctx" $) */}}
{{- define "tfscore.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/* Job namespaces: watchNamespaces, or the release namespace; as a JSON list (fromJsonArray to use). */}}
{{- define "tfscore.jobNamespaces" -}}
{{- $ns := .Values.watchNamespaces | default (list .Release.Namespace) | uniq }}
{{- toJson $ns }}
{{- end }}

{{/* kopf peering is on for more than one replica ("true" or ""). */}}
{{- define "tfscore.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{/* The peering object the replicas meet in: one per release, so neither another tfscore release nor an unrelated
kopf operator (kopf's default peering is "default") shares the peer group. */}}
{{- define "tfscore.peeringName" -}}
{{- include "tfscore.fullname" . }}
{{- end }}

{{/* The operator's rules in a job namespace (or cluster-wide): what builders/kube.py and kopf call. */}}
{{- define "tfscore.operatorRules" -}}
- apiGroups: [tfscore.io]
  resources: [scoringjobs]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [tfscore.io]
  resources: [scoringjobs/status]
  verbs: [get, patch, update]
- apiGroups: [tfscore.io]
  resources: [scoringschedules]
  verbs: [get, list, watch]
- apiGroups: [tfscore.io]
  resources: [scoringschedules/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [pods, services]
  verbs: [create, get, list, watch, delete, patch]
- apiGroups: [""]
  resources: [configmaps]  # one immutable ConfigMap per attempt: created, read, replaced, never edited
  verbs: [create, get, list, watch, delete]
- apiGroups: [""]
  resources: [secrets]  # each job's Spark authentication Secret (generated name); never read
  verbs: [create]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [create, get]
- apiGroups: [tfscore.io]
  resources: [scoringpolicies]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.kueue.enabled }}
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads]
  verbs: [create, get, list, watch, patch, delete]
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads/status]
  verbs: [get, patch]
{{- end }}
{{- if include "tfscore.peering" . }}
- apiGroups: [kopf.dev]
  resources: [{{ if .Values.clusterWide }}clusterkopfpeerings{{ else }}kopfpeerings{{ end }}]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}

{{/* Cross-field checks values.schema.json cannot express; each message names the values to change. */}}
{{- define "tfscore.validate" -}}
{{- if and .Values.metrics.enabled (eq (int64 .Values.metrics.port) (int64 .Values.operator.healthPort)) }}
{{- fail (printf "metrics.port and operator.healthPort are both %v: give them different ports" .Values.metrics.port) }}
{{- end }}
{{- $jobNamespaces := include "tfscore.jobNamespaces" . | fromJsonArray }}
{{- range $ns, $_ := .Values.policy.namespaces }}
{{- if not (has $ns $jobNamespaces) }}
{{- fail (printf "policy.namespaces.%s: not a job namespace (watchNamespaces: %s)" $ns (join ", " $jobNamespaces)) }}
{{- end }}
{{- end }}
{{- if lt (float64 .Values.operator.backoffMaxSeconds) (float64 .Values.operator.backoffBaseSeconds) }}
{{- fail (printf "operator.backoffMaxSeconds (%v) must be >= operator.backoffBaseSeconds (%v)" .Values.operator.backoffMaxSeconds .Values.operator.backoffBaseSeconds) }}
{{- end }}
{{- end }}
