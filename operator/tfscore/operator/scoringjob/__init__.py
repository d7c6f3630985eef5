"""The ScoringJob kind: builders (spec → Kubernetes objects, pure), driver_pod (a driver pod → what it means, pure),
lifecycle (the Job-like decision, pure) and reconcile (the API calls that apply a decision, thin)."""
