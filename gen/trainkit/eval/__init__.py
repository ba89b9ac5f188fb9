"""`gen eval`: scores of a run's samples or translations (evaluate.py, translation.py) on features of
a classifier trained on the run's own data (classifier.py), or of local Inception weights
(inception.py); the metrics themselves in metrics.py."""
