"""Per-provider pacing shared by every concurrent function: a submit rate and a cap on tasks in flight."""
