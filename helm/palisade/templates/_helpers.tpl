{{/* Name of every object: fullnameOverride, else the release name. */}}
{{- define "palisade.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. No chart version or "managed-by" label: the
default render equals manifests/, which kustomize applies too. */}}
{{- define "palisade.labels" -}}
app.kubernetes.io/name: palisade
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels that select the operator's pods. */}}
{{- define "palisade.selectorLabels" -}}
{{ include "palisade.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "palisade.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{/* Leader election is required as soon as two replicas run. */}}
{{- define "palisade.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}
true
{{- else -}}
false
{{- end -}}
{{- end -}}

{{/* operator.resyncInterval in seconds (values.schema.json allows one unit). */}}
{{- define "palisade.resyncSeconds" -}}
{{- $interval := toString .Values.operator.resyncInterval -}}
{{- $number := regexFind "^[0-9]+" $interval | int -}}
{{- $unit := trimPrefix (toString $number) $interval -}}
{{- $seconds := dict "s" 1 "m" 60 "h" 3600 "d" 86400 -}}
{{- mul $number (get $seconds $unit) -}}
{{- end -}}
