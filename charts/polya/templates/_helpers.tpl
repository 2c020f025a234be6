{{/*
Names, labels, images, scheduling, S3 settings and alert rules shared by the templates.
*/}}

{{- define "polya.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "polya.fullname" -}}
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

{{/* Name of one component's resources: polya.component (dict "root" $ "component" "verifier") */}}
{{- define "polya.componentName" -}}
{{- printf "%s-%s" (include "polya.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "polya.selectorLabels" -}}
app.kubernetes.io/name: {{ include "polya.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "polya.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "polya.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: polya
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels every pod of the release carries (NetworkPolicies select release pods by them). */}}
{{- define "polya.releaseSelector" -}}
app.kubernetes.io/name: {{ include "polya.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A polya image: polya.image (dict "root" $ "image" .Values.verifier.image) */}}
{{- define "polya.image" -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if .root.Values.image.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* A third-party image (MinIO, mc, Prometheus): repository:tag as given. */}}
{{- define "polya.thirdPartyImage" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{- define "polya.imagePullSecrets" -}}
imagePullSecrets:
{{ toYaml .Values.imagePullSecrets }}
{{- end -}}

{{- define "polya.podSecurityContext" -}}
securityContext:
{{ toYaml .Values.podSecurityContext | indent 2 }}
{{- end -}}

{{- define "polya.containerSecurityContext" -}}
securityContext:
{{ toYaml .Values.containerSecurityContext | indent 2 }}
{{- end -}}

{{/*
Node selector and tolerations of a pod: polya.scheduling (dict "root" $ "pool" "gpu"
"nodeSelector" .Values.x.nodeSelector "tolerations" .Values.x.tolerations). Component values win
over the pool's.
*/}}
{{- define "polya.scheduling" -}}
{{- $pool := ternary .root.Values.scheduling.gpuPool .root.Values.scheduling.cpuPool (eq .pool "gpu") -}}
{{- $nodeSelector := .nodeSelector | default $pool.nodeSelector -}}
{{- $tolerations := .tolerations | default $pool.tolerations -}}
{{- $out := dict -}}
{{- with $nodeSelector }}{{ $_ := set $out "nodeSelector" . }}{{ end -}}
{{- with $tolerations }}{{ $_ := set $out "tolerations" . }}{{ end -}}
{{- if $out }}{{ toYaml $out }}{{ end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- S3 / MinIO */}}

{{- define "polya.minio.fullname" -}}
{{- include "polya.componentName" (dict "root" . "component" "minio") -}}
{{- end -}}

{{- define "polya.minio.secretName" -}}
{{- .Values.minio.auth.existingSecret | default (include "polya.minio.fullname" .) -}}
{{- end -}}

{{/* Fail early on an inconsistent S3 choice. */}}
{{- define "polya.s3.check" -}}
{{- if and .Values.minio.enabled .Values.s3.external.enabled -}}
{{- fail "s3: minio.enabled and s3.external.enabled are both true; choose one store (set minio.enabled=false to use the external S3)" -}}
{{- end -}}
{{- if .Values.s3.external.enabled -}}
{{- if not .Values.s3.external.endpoint -}}
{{- fail "s3.external.endpoint is empty: give the S3 endpoint URL, e.g. https://s3.eu-west-1.amazonaws.com" -}}
{{- end -}}
{{- if not .Values.s3.external.existingSecret -}}
{{- fail "s3.external.existingSecret is empty: name a Secret holding the access key pair (keys s3.external.accessKeyIdKey and s3.external.secretAccessKeyKey)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* True ("true") when some S3 store is configured. */}}
{{- define "polya.s3.enabled" -}}
{{- if or .Values.minio.enabled .Values.s3.external.enabled -}}true{{- end -}}
{{- end -}}

{{- define "polya.s3.endpoint" -}}
{{- if .Values.s3.external.enabled -}}
{{- .Values.s3.external.endpoint -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%v" (include "polya.minio.fullname" .) .Release.Namespace .Values.minio.service.apiPort -}}
{{- end -}}
{{- end -}}

{{/* Environment of a container that talks to S3 (polya's store reads these variables). */}}
{{- define "polya.s3.env" -}}
{{- $secret := ternary .Values.s3.external.existingSecret (include "polya.minio.secretName" .) .Values.s3.external.enabled -}}
{{- $idKey := ternary .Values.s3.external.accessKeyIdKey "rootUser" .Values.s3.external.enabled -}}
{{- $secretKey := ternary .Values.s3.external.secretAccessKeyKey "rootPassword" .Values.s3.external.enabled -}}
- name: POLYA_S3_ENDPOINT
  value: {{ include "polya.s3.endpoint" . | quote }}
- name: POLYA_S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
- name: AWS_REGION
  value: {{ .Values.s3.external.region | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $idKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $secretKey }}
{{- end -}}

{{/* ---------------------------------------------------------------- vLLM */}}

{{- define "polya.vllm.fullname" -}}
{{- include "polya.componentName" (dict "root" . "component" "vllm") -}}
{{- end -}}

{{- define "polya.vllm.hfTokenSecret" -}}
{{- if .Values.vllm.hfToken.existingSecret -}}
{{- .Values.vllm.hfToken.existingSecret -}}
{{- else if .Values.vllm.hfToken.create -}}
{{- printf "%s-hf-token" (include "polya.vllm.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The --model argument: an HF id, or a directory on the mounted model volume. */}}
{{- define "polya.vllm.modelArg" -}}
{{- $m := .Values.vllm.model -}}
{{- if eq $m.source "hf" -}}
{{- if not $m.hfId -}}{{- fail "vllm.model.hfId is empty: give a Hugging Face model id (vllm.model.source is hf)" -}}{{- end -}}
{{- $m.hfId -}}
{{- else if eq $m.source "pvc" -}}
{{- if not $m.pvc.claimName -}}{{- fail "vllm.model.pvc.claimName is empty: name the PersistentVolumeClaim holding the model (vllm.model.source is pvc)" -}}{{- end -}}
{{- printf "/models/%s" (trimPrefix "/" $m.pvc.path) | trimSuffix "/" -}}
{{- else if eq $m.source "s3" -}}
{{- if not $m.s3.prefix -}}{{- fail "vllm.model.s3.prefix is empty: give the model directory's prefix in s3.bucket (vllm.model.source is s3)" -}}{{- end -}}
{{- if not (include "polya.s3.enabled" .) -}}{{- fail "vllm.model.source is s3 but no S3 store is configured: enable minio.enabled or s3.external.enabled" -}}{{- end -}}
/cache/model
{{- else -}}
{{- fail (printf "vllm.model.source %q is not valid: use hf, pvc or s3" $m.source) -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- verifier */}}

{{- define "polya.verifier.fullname" -}}
{{- include "polya.componentName" (dict "root" . "component" "verifier") -}}
{{- end -}}

{{- define "polya.verifier.authSecret" -}}
{{- .Values.verifier.auth.existingSecret | default (printf "%s-auth" (include "polya.verifier.fullname" .)) -}}
{{- end -}}

{{/* ---------------------------------------------------------------- Ray */}}

{{/* The RayCluster's name: at most 53 characters, the longest KubeRay accepts (it derives pod and
Service names from it). */}}
{{- define "polya.ray.fullname" -}}
{{- printf "%s-ray" (include "polya.fullname" . | trunc 49 | trimSuffix "-") -}}
{{- end -}}

{{/* ---------------------------------------------------------------- Kubeflow Trainer */}}

{{/* The ClusterTrainingRuntime's name: cluster-scoped, so the release namespace is part of it. */}}
{{- define "polya.trainer.runtimeName" -}}
{{- .Values.trainer.runtime.name | default (printf "%s-%s-torch" .Release.Namespace (include "polya.fullname" .)) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "polya.pipelineRunner.serviceAccountName" -}}
{{- if .Values.pipelineRunner.serviceAccount.create -}}
{{- .Values.pipelineRunner.serviceAccount.name | default (printf "%s-pipeline-runner" (include "polya.fullname" .)) -}}
{{- else -}}
{{- .Values.pipelineRunner.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- monitoring */}}

{{/*
The alert rule groups, shared by the PrometheusRule and the bundled Prometheus. Job labels are the
Service names (the ServiceMonitor default, and what the bundled Prometheus sets).
Metric names: the verifier's come from src/polya/verify/service/metrics.py (prometheus_client adds
_total to counters); vLLM's are vllm:*; polya rl exports polya_rl_reward_mean and polya_rl_steps_total.
*/}}
{{- define "polya.alertGroups" -}}
{{- $a := .Values.monitoring.alerts -}}
{{- $verifier := include "polya.verifier.fullname" . -}}
{{- $vllm := include "polya.vllm.fullname" . -}}
{{- $ns := .Release.Namespace -}}
- name: polya-verifier
  rules:
    - alert: PolyaVerifierDown
      expr: up{job="{{ $verifier }}", namespace="{{ $ns }}"} == 0 or polya_verifier_pool_up{job="{{ $verifier }}", namespace="{{ $ns }}"} == 0
      for: 2m
      labels:
        severity: {{ $a.severityCritical }}
      annotations:
        summary: "Verifier {{ "{{ $labels.instance }}" }} is down or its judge pool is dead"
        description: "The scrape of {{ "{{ $labels.instance }}" }} fails or polya_verifier_pool_up is 0 (all judge workers gone); /health answers 503 and the pod will be restarted."
    - alert: PolyaVerifierErrors
      expr: |
        sum by (namespace, job) (rate(polya_verifier_requests_total{job="{{ $verifier }}", namespace="{{ $ns }}", status=~"5.."}[5m]))
          / sum by (namespace, job) (rate(polya_verifier_requests_total{job="{{ $verifier }}", namespace="{{ $ns }}"}[5m]))
          > {{ $a.verifierErrorRatio }}
      for: {{ $a.for }}
      labels:
        severity: {{ $a.severityWarning }}
      annotations:
        summary: "Verifier answers more than {{ mulf $a.verifierErrorRatio 100 }}% of requests with 5xx"
        description: "{{ "{{ $value | humanizePercentage }}" }} of the verifier's HTTP requests failed with a server error over 5 minutes."
    - alert: PolyaVerifierItemErrors
      expr: |
        sum by (namespace, job) (rate(polya_verifier_items_total{job="{{ $verifier }}", namespace="{{ $ns }}", status="error"}[5m]))
          / sum by (namespace, job) (rate(polya_verifier_items_total{job="{{ $verifier }}", namespace="{{ $ns }}"}[5m]))
          > {{ $a.verifierItemErrorRatio }}
      for: {{ $a.for }}
      labels:
        severity: {{ $a.severityWarning }}
      annotations:
        summary: "More than {{ mulf $a.verifierItemErrorRatio 100 }}% of judged items end in status error"
        description: "{{ "{{ $value | humanizePercentage }}" }} of items could not be judged (sandbox failures, worker crashes); see the verifier's log."
    - alert: PolyaVerifierTimeouts
      expr: |
        sum by (namespace, job) (rate(polya_verifier_item_timeouts_total{job="{{ $verifier }}", namespace="{{ $ns }}"}[5m]))
          / sum by (namespace, job) (rate(polya_verifier_items_total{job="{{ $verifier }}", namespace="{{ $ns }}"}[5m]))
          > {{ $a.verifierTimeoutRatio }}
      for: {{ $a.for }}
      labels:
        severity: {{ $a.severityWarning }}
      annotations:
        summary: "More than {{ mulf $a.verifierTimeoutRatio 100 }}% of judged items hit their deadline"
        description: "{{ "{{ $value | humanizePercentage }}" }} of items timed out (their judge worker was killed and replaced); raise verifier.config.item_deadline_s or add replicas."
    - alert: PolyaVerifierWorkerCrashes
      expr: increase(polya_verifier_worker_crashes_total{job="{{ $verifier }}", namespace="{{ $ns }}"}[15m]) > 3
      labels:
        severity: {{ $a.severityWarning }}
      annotations:
        summary: "Judge workers of {{ "{{ $labels.instance }}" }} keep crashing"
        description: "{{ "{{ $value }}" }} judge workers died on their own in 15 minutes (out of memory?)."
- name: polya-vllm
  rules:
    - alert: PolyaVLLMDown
      expr: up{job="{{ $vllm }}", namespace="{{ $ns }}"} == 0 or absent(up{job="{{ $vllm }}", namespace="{{ $ns }}"})
      for: 5m
      labels:
        severity: {{ $a.severityCritical }}
      annotations:
        summary: "vLLM server {{ $vllm }} is down"
        description: "No vLLM server of {{ $vllm }} answers its /metrics scrape: generation, RL rollouts and evaluation stop."
    - alert: PolyaVLLMQueueBacklog
      expr: sum by (namespace, job, instance) (vllm:num_requests_waiting{job="{{ $vllm }}", namespace="{{ $ns }}"}) > {{ $a.vllmWaitingRequests }}
      for: 10m
      labels:
        severity: {{ $a.severityWarning }}
      annotations:
        summary: "vLLM server {{ "{{ $labels.instance }}" }} has a long queue"
        description: "{{ "{{ $value }}" }} requests are waiting (vllm:num_requests_waiting); add replicas or lower the client concurrency."
- name: polya-rl
  rules:
    - alert: PolyaRLRewardStalled
      expr: |
        (
          avg by (namespace, run) (avg_over_time(polya_rl_reward_mean{namespace="{{ $ns }}"}[{{ $a.rlWindow }}]))
            - avg by (namespace, run) (avg_over_time(polya_rl_reward_mean{namespace="{{ $ns }}"}[{{ $a.rlWindow }}] offset {{ $a.rlWindow }}))
        ) <= {{ $a.rlMinRewardGain }}
        and on (namespace, run)
        sum by (namespace, run) (increase(polya_rl_steps_total{namespace="{{ $ns }}"}[{{ $a.rlWindow }}])) > 0
      for: {{ $a.for }}
      labels:
        severity: {{ $a.severityWarning }}
      annotations:
        summary: "RL reward of run {{ "{{ $labels.run }}" }} stopped improving"
        description: "The mean reward over the last {{ $a.rlWindow }} rose by {{ "{{ $value }}" }} (at most {{ $a.rlMinRewardGain }}) while training steps kept running."
    - alert: PolyaRLTrainingStalled
      expr: |
        sum by (namespace, run) (increase(polya_rl_steps_total{namespace="{{ $ns }}"}[{{ $a.rlWindow }}])) == 0
        and on (namespace, run)
        sum by (namespace, run) (polya_rl_reward_mean{namespace="{{ $ns }}"}) > -Inf
      for: {{ $a.for }}
      labels:
        severity: {{ $a.severityWarning }}
      annotations:
        summary: "RL run {{ "{{ $labels.run }}" }} made no training step in {{ $a.rlWindow }}"
        description: "polya_rl_steps_total did not increase for {{ $a.rlWindow }} although the run still exports metrics (stuck rollouts or a hung worker)."
{{- end -}}
