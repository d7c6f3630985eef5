"""tfscore: Kubernetes-native batch inference with TensorFlow SavedModels on Spark."""

__version__ = "0.1.0"
