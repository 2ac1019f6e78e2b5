{{/*
The chart name, overridable with nameOverride.
*/}}
{{- define "lambda-task-pool.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name used as a prefix for resources: fullnameOverride, or release name plus chart name (once).
*/}}
{{- define "lambda-task-pool.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "lambda-task-pool.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "lambda-task-pool.labels" -}}
helm.sh/chart: {{ include "lambda-task-pool.chart" . }}
{{ include "lambda-task-pool.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lambda-task-pool
{{- end }}

{{/*
Selector labels: stable for the life of a release.
*/}}
{{- define "lambda-task-pool.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lambda-task-pool.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/*
The ServiceAccount the controller runs as.
*/}}
{{- define "lambda-task-pool.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lambda-task-pool.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository, then @digest or :tag (tag defaults to the appVersion).
*/}}
{{- define "lambda-task-pool.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The name of the Secret holding the default database URL, or "" when there is no default database.
*/}}
{{- define "lambda-task-pool.databaseSecretName" -}}
{{- default .Values.database.existingSecret .Values.database.secretRef.name }}
{{- end }}

{{/*
The RBAC rules the controller needs on LambdaTaskPools, the pool's Secret and events. Used by the
ClusterRole (all namespaces) or by one Role per watched namespace. No wildcards.
*/}}
{{- define "lambda-task-pool.secretRules" -}}
# A pool's spec.database.secretRef, read by name in the pool's own namespace. Only get: no list, no watch.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}

{{- define "lambda-task-pool.rules" -}}
# Exactly what src/controller calls: pools are read through a watch and patched (finalizer); status is patched.
# No lambdataskpools/finalizers: the finalizer is a merge patch of the pool itself, and the controller sets no
# ownerReferences (the subresource is only for blockOwnerDeletion).
- apiGroups: ["lambda.taskpool.io"]
  resources: ["lambdataskpools"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["lambda.taskpool.io"]
  resources: ["lambdataskpools/status"]
  verbs: ["patch"]
# Events about pools (core/v1 Events, created once each; repeats are folded by the controller).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
The Lease the replicas elect a leader on (LEASE_NAME): one per release, so two releases never share it.
*/}}
{{- define "lambda-task-pool.leaseName" -}}
{{- default (include "lambda-task-pool.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The metrics Service: a Service name is a DNS-1035 label (at most 63 characters, no dots, a letter first),
while a release name may hold dots and start with a digit, and the full name already may be 63 characters.
So dots become dashes, a leading digit gets "ltp-" before it, and the name is cut to leave room for "-metrics".
*/}}
{{- define "lambda-task-pool.metricsServiceName" -}}
{{- $base := include "lambda-task-pool.fullname" . | replace "." "-" }}
{{- if regexMatch "^[0-9]" $base }}{{ $base = printf "ltp-%s" $base }}{{ end }}
{{- printf "%s-metrics" ($base | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/*
The job label the chart's ServiceMonitor and PodMonitor give the scraped series.
*/}}
{{- define "lambda-task-pool.metricsJob" -}}
{{- include "lambda-task-pool.fullname" . }}
{{- end }}

{{/*
The PromQL label matchers that select this release's series in the alert rules.
*/}}
{{- define "lambda-task-pool.promSelector" -}}
{{- default (printf "job=%q" (include "lambda-task-pool.metricsJob" .)) .Values.prometheusRule.selector }}
{{- end }}

{{/*
Relabelling shared by the ServiceMonitor and the PodMonitor: every series gets job=<full name>, whichever
monitor scraped it, so that the alert rules select the same series either way.
*/}}
{{- define "lambda-task-pool.monitorRelabelings" -}}
- action: replace
  targetLabel: job
  replacement: {{ include "lambda-task-pool.metricsJob" . }}
{{- end }}
