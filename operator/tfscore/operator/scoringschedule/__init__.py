"""ScoringSchedule: recurring ScoringJobs (decide.py pure; builders.py pure; reconcile.py thin; controller.py)."""
