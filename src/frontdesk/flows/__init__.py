"""Business processes as data (YAML flows), the tools they call, and the runner."""
