"""Training the MetaRS network: data, training loop, evaluation and event adaptation."""
