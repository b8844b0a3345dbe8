"""live-code: run a YMIR task from a git repository pinned to a commit or tag.

The package is layered; a module imports its own package and the layers below it, never one above
(``tests/test_boundaries.py`` holds the rule). Lowest first:

- **foundation** (``errors``, ``contract``, ``util``, ``_yaml``, ``progress``, ``record``): one error
  hierarchy, the harness's side of YMIR's /in -> /out contract (paths, task kinds, monitor states),
  small helpers, the YAML reader and ``@record`` (frozen dataclasses without ``dataclasses``'s cost
  at import). They import nothing of the layers above.
- ``task/``: what a task asks for. YMIR's config.yaml with the task keys and the typed task
  (``config``), env.yaml (``env``), the readers of one config value (``values``), the repository's
  ``live-code.yaml`` (``manifest``) and its hyper-parameter schema (``schema``), and what a
  repository written for the original image implies (``legacy``: which executor SDK, which packages).
- ``source/``: where the code comes from. Checks of URLs, refs and commit ids before git runs
  (``urls``), running git hardened (``gitrun``) and over the network (``gitnet``; ``git`` re-exports
  both), the operator's mirrors (``mirrors``), the bare mirror of a repository (``localmirror``),
  pins and the tag policy (``pins``, ``resolve``), verified checkouts reused without git
  (``checkouts``), fetching a task's source (``sources``), and the cache with the entry lifecycle
  that envs share (``store``).
- ``envs/``: what the code runs in. Requirements (``requirements``, each line checked in
  ``requirement_lines``), the base image's interpreter and its cached fingerprint (``base``) and
  the frameworks it protects (``frameworks``), the installers (``installer``), resolution as of a
  date (``resolve``), PEP 751 locks (``lock``), the env builder and its key (``builder``) with its
  provenance (``provenance``) and background bytecode compilation (``bytecode``).
- ``run/``: one task, start to end. The pipeline's steps (``pipeline``) and the operator's
  settings (``settings``), what the job sees (``job``: argv, env, SDK shim), the job's process group
  (``supervisor``) and its output pump (``_pump``, ``_splice``), bubblewrap (``sandbox``) or the
  mapped-path fallback (``fallback``), the gate that checks every output against what YMIR parses
  (``outputs/``, a rule table and a module per result file), the harness's own records in the
  out dir (``records``: monitor.txt, provenance) and SIGTERM before the job runs (``signals``).
- ``commands/``: one module per researcher command (``local``, ``check``, ``replay``, ``report``,
  ``init``, ``sample``, ``cache``, ``prefetch``, ``validate``, ``lock``), with the parts some are
  made of (``check_smoke``, ``report_pictures``: the report extra's pictures, ``tfevents``: replay's
  scalars, ``lock_cli``), ``datasets`` for the datasets
  ``local`` converts, and the parts ``local`` is made of (``repo``: the --repo argument and
  snapshots, ``models``, ``names``, ``local_run``: the pipeline on a task dir, shared with replay,
  ``local_cli``: its command line). A command with a command line of its own has
  ``add_parser(subparsers)`` and its handler; ``_cli`` holds what they share. Commands may use each
  other; nothing below them imports a command.
- ``cli``: parses arguments, dispatches to a command and turns errors into exit codes.
- ``sdk/``: what user code imports inside the job (the standard library and PyYAML only), with
  ``sdk.main`` as a repository's entry. It is copied into every job, so ``sdk/formats/`` is also the
  one home of the formats the harness needs (image headers, the Box, ark/VOC/COCO, TFRecord
  framing): the one part of the SDK the harness may import.
"""

from __future__ import annotations

__version__ = "0.1.0"
