"""Modal screens: confirmations (Cancel focused), deny reason, help, task detail."""
