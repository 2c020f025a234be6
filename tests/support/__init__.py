"""Test support shared by the unit and integration tests (not tests themselves).

``structural_schema``: CRD structural-schema validation as an API server does it; ``crds``: the
vendored upstream CRDs (tests/fixtures/crds); ``pod_security``: the Pod Security Standards'
"restricted" rules; ``kuberay`` / ``trainer``: how those operators turn a job into pods;
``tiny_run``: settings of a tiny ``polya run`` on the embedded model; ``select_runs``: run select
and read its datasets; ``fixtures``: paths under tests/fixtures; ``waiting``: ``wait_for``.
``tests/conftest.py`` puts ``tests/`` on the import path, so test modules
import them as ``from support.crds import ...``.
"""
