"""The Redis store: a task queue (RedisQueue) and channels behind the same protocols as the file store.

Keys live under ``galaxy:{CLUSTER}:`` (one hash slot per cluster). docs/cluster.md says what is atomic
and what a Redis crash can lose.
"""
