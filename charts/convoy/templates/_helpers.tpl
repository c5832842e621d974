{{/*
The chart name, or nameOverride.
*/}}
{{- define "convoy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name used for resource names: fullnameOverride, else the release name when it
already contains the chart name, else "<release>-<chart>". Truncated to 63 characters (the
limit of label values and of many names).
*/}}
{{- define "convoy.fullname" -}}
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
A name derived from the full name with a suffix, kept within 63 characters.
Usage: include "convoy.suffixedName" (list . "metrics")
*/}}
{{- define "convoy.suffixedName" -}}
{{- $ctx := index . 0 }}
{{- $suffix := index . 1 }}
{{- $base := include "convoy.fullname" $ctx | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "convoy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object of the release.
*/}}
{{- define "convoy.labels" -}}
helm.sh/chart: {{ include "convoy.chart" . }}
{{ include "convoy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: convoy
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the manager pods. Part of the Deployment's immutable selector: never
change them.
*/}}
{{- define "convoy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "convoy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{/*
The name of the manager's ServiceAccount.
*/}}
{{- define "convoy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "convoy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from a repository, tag and digest: repository@digest when a digest is
set, else repository:tag.
Usage: include "convoy.imageRef" (dict "repository" ... "tag" ... "digest" ...)
*/}}
{{- define "convoy.imageRef" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (toString .tag) }}
{{- end }}
{{- end }}

{{/*
The manager image.
*/}}
{{- define "convoy.image" -}}
{{- include "convoy.imageRef" (dict "repository" .Values.image.repository "tag" (.Values.image.tag | default .Chart.AppVersion) "digest" .Values.image.digest) }}
{{- end }}

{{/*
The convoy-drain image: its own tag or digest, else the manager image's tag.
*/}}
{{- define "convoy.drainHelperImage" -}}
{{- $img := .Values.drainHelper.image }}
{{- include "convoy.imageRef" (dict "repository" $img.repository "tag" ($img.tag | default .Values.image.tag | default .Chart.AppVersion) "digest" $img.digest) }}
{{- end }}

{{/*
The value of GOMEMLIMIT, or nothing. "auto" is 90% of resources.limits.memory in bytes,
which leaves the Go runtime room below the container's limit to return memory instead of
growing into an OOM kill (docs/performance.md).
*/}}
{{- define "convoy.goMemLimit" -}}
{{- $mode := toString .Values.goMemLimit }}
{{- if eq $mode "auto" }}
{{- $limit := dig "limits" "memory" "" .Values.resources }}
{{- if $limit }}
{{- $bytes := include "convoy.quantityBytes" $limit | int64 }}
{{- div (mul $bytes 9) 10 }}
{{- end }}
{{- else if and (ne $mode "off") (ne $mode "") }}
{{- $mode }}
{{- end }}
{{- end }}

{{/*
A memory quantity (such as 512Mi, 1G, 1.5Gi or 536870912) in bytes. Fails for forms it does
not know; set goMemLimit explicitly then.
*/}}
{{- define "convoy.quantityBytes" -}}
{{- $q := . }}
{{- if or (kindIs "float64" $q) (kindIs "int" $q) (kindIs "int64" $q) }}
{{- $q | int64 }}
{{- else }}
{{- $q = toString $q }}
{{- $m := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $unit := trimPrefix $m $q }}
{{- $factors := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- if or (not $m) (not (hasKey $factors $unit)) }}
{{- fail (printf "goMemLimit: auto cannot read the memory limit %q; set goMemLimit to a value such as \"460MiB\" or \"off\"" $q) }}
{{- end }}
{{- mulf $m (get $factors $unit) | floor | int64 }}
{{- end }}
{{- end }}
