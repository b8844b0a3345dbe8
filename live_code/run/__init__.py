"""One task, start to end: the pipeline's steps, the supervisor, the sandbox or its fallback, the output gate."""
