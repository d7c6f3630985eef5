"""The Spark + TensorFlow data plane (imports nothing from Kubernetes)."""
