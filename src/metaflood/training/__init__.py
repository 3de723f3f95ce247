"""Training the MetaRS network: synthetic and real training data (the real sets' layouts
and pools), the training loop, evaluation and event adaptation."""
