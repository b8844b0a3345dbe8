"""What the test modules share, so that no test module imports another.

- ``repos``: git with the tests' fixed identity, and file trees written from a mapping.
- ``gitserver``: git servers on 127.0.0.1 (smart http, git daemon, one that never answers).
- ``envs``: the job-environment fixtures (a wheelhouse, the real uv, a base interpreter), a pytest
  plugin registered by tests/conftest.py.
- ``jobs``: small jobs and the CLI runners of the ``run`` and ``local`` tests.
- ``sdk_tasks``: a task's /in folder written for the SDK and output tests.
- ``tensorboard``: TensorBoard event files read back.
- ``dockerfiles``: the base images' Dockerfiles read as data.
- ``images``: the images built with buildah on stand-in bases and run as YMIR runs them.
- ``site``: a site behind its own CA (a TLS package index and git server).
- ``venvs``: a throwaway venv with what pip installs into it (also the bench's pip baseline).
- ``template_runs``: a template committed as a user's repo and run through ``live-code run``.
- ``adversarial``: the adversarial suite's harness, canaries and invariant checks (its fixtures are
  in tests/adversarial/conftest.py).

Fixtures and markers (``needs_bwrap``) live in the conftest.py files, which no module imports.
"""
