"""Dashboard panels; each takes the snapshot (attributes down) and posts messages up."""
