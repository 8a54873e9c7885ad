"""Helpers shared by test modules (not doubles: nothing here stands in for a real system)."""
