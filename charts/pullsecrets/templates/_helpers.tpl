{{- define "pullsecrets.name" -}}pullsecrets-controller{{- end -}}

{{- define "pullsecrets.labels" -}}
app.kubernetes.io/name: pullsecrets
app.kubernetes.io/component: controller
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "pullsecrets.selector" -}}
app.kubernetes.io/name: pullsecrets
app.kubernetes.io/component: controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pullsecrets.sourceNamespaces" -}}
{{- $all := prepend .Values.sourceNamespaces .Release.Namespace | uniq -}}
{{- join "," $all -}}
{{- end -}}

{{- /* repository@digest when a digest is given, else repository:tag (appVersion by default). */ -}}
{{- define "pullsecrets.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "pullsecrets.metricsPortName" -}}
{{- if .Values.metrics.secure -}}https-metrics{{- else -}}http-metrics{{- end -}}
{{- end -}}
