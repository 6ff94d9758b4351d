"""Models: pure ``nn.Module``s (encodings, SIREN) and scikit-learn-style estimators."""
