"""The company's own files: guidelines.yaml and the knowledge folder."""
