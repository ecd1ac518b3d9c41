"""Learning: labelled datasets, the intent model, its evaluation and the model registry."""
