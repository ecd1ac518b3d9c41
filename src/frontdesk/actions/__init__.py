"""The only code that writes state: each action writes, commits, then publishes."""
