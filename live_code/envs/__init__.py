"""What the code runs in: requirements, the base interpreter, the installers, the env builder."""
