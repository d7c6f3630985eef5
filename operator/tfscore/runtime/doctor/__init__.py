"""`tfscore doctor`: can this environment run tfscore, and is it still the environment its image was built as?

facts.py: the live environment as a manifest, and how two manifests differ (worded once) · checks.py: the checks
`tfscore doctor` runs and its report · executors.py: the driver and every executor proven to run one image.
"""
