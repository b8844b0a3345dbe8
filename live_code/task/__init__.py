"""What a task asks for: YMIR's env.yaml and config.yaml, live-code.yaml, the legacy layout."""
