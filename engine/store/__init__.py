"""Where the cluster's shared state lives: the file store under the shared root (one rig) or
Redis (several rigs). Import-light: nothing here imports ``redis`` until a Redis store is opened."""
