{{/*
Names. The helpers read only .Values and .Release (never .Chart), so that another
chart can call "vibes-bridge.container" with (dict "Values" .Values.<alias> "Release" .Release)
and get the same names the sub-chart gave its ConfigMap and Secret.
*/}}
{{- define "vibes-bridge.name" -}}
{{- default "vibes-bridge" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vibes-bridge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "vibes-bridge.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vibes-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vibes-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vibes-bridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "vibes-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: bridge
{{- end }}

{{- define "vibes-bridge.configMapName" -}}
{{- default (include "vibes-bridge.fullname" .) .Values.mapping.existingConfigMap }}
{{- end }}

{{- define "vibes-bridge.secretName" -}}
{{- default (include "vibes-bridge.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "vibes-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vibes-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The chart's appVersion, written out because a parent chart calling the container
template has another .Chart (tests/deploy checks it equals Chart.yaml's appVersion).
*/}}
{{- define "vibes-bridge.appVersion" -}}
0.1.0
{{- end }}

{{- define "vibes-bridge.image" -}}
{{- $tag := default (include "vibes-bridge.appVersion" .) .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Checksum of the configuration and the Secret the chart renders, for a pod-template
annotation: a changed mapping rolls the pods. (An existing ConfigMap or Secret is
not seen by the chart; roll those with `kubectl rollout restart`.)
*/}}
{{- define "vibes-bridge.checksum" -}}
{{- $parts := list .Values.mapping.config (toJson .Values.mapping.files) (toJson .Values.secret.values) .Values.mapping.existingConfigMap .Values.secret.existingSecret }}
{{- join "\n" $parts | sha256sum }}
{{- end }}

{{/*
The bridge's container, as one list item. Context: (dict "Values" <the chart's values> "Release" .Release).
With sidecar.native it carries restartPolicy: Always and belongs under initContainers.
*/}}
{{- define "vibes-bridge.container" -}}
- name: vibes-bridge
  image: {{ include "vibes-bridge.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if and (eq .Values.mode "sidecar") .Values.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args: ["run"]
  env:
    - name: BRIDGE_CONFIG
      value: /etc/vibes-bridge/bridge.yaml
    - name: BRIDGE_MANAGEMENT_PORT
      value: {{ .Values.management.port | quote }}
    {{- range $name, $value := .Values.env }}
    - name: {{ $name }}
      value: {{ $value | toString | quote }}
    {{- end }}
    {{- $secretName := include "vibes-bridge.secretName" . }}
    {{- range $name, $key := .Values.secret.env }}
    - name: {{ $name }}
      valueFrom:
        secretKeyRef:
          name: {{ $secretName }}
          key: {{ $key }}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: management
      containerPort: {{ .Values.management.port }}
      protocol: TCP
  startupProbe:
    httpGet: {path: /healthz, port: management}
    {{- toYaml .Values.probes.startup | nindent 4 }}
  livenessProbe:
    httpGet: {path: /healthz, port: management}
    {{- toYaml .Values.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet: {path: /readyz, port: management}
    {{- toYaml .Values.probes.readiness | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: vibes-bridge-config
      mountPath: /etc/vibes-bridge
      readOnly: true
    - name: vibes-bridge-secrets
      mountPath: /etc/vibes-bridge/secrets
      readOnly: true
    - name: vibes-bridge-tmp
      mountPath: /tmp
{{- end }}

{{/*
The volumes "vibes-bridge.container" mounts, as list items. Same context.
*/}}
{{- define "vibes-bridge.volumes" -}}
- name: vibes-bridge-config
  configMap:
    name: {{ include "vibes-bridge.configMapName" . }}
- name: vibes-bridge-secrets
  secret:
    secretName: {{ include "vibes-bridge.secretName" . }}
    defaultMode: 0440
- name: vibes-bridge-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- end }}

{{/* Refuse combinations the schema cannot express. */}}
{{- define "vibes-bridge.validate" -}}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled }}
{{- fail "autoscaling.enabled and keda.enabled exclude each other: KEDA creates its own HorizontalPodAutoscaler" }}
{{- end }}
{{- if and .Values.sidecar.native (ne .Values.mode "sidecar") }}
{{- fail "sidecar.native applies to mode: sidecar only" }}
{{- end }}
{{- end }}
