"""Suite-wide: an operator's own ~/.config/galaxy/galaxy.toml must not change what tests see
(galaxy.toml is looked for in $XDG_CONFIG_HOME/galaxy/, engine/config_locate.py), nor may tests
write the dashboard's preferences into the real home. Tests that need one set it themselves."""

from __future__ import annotations

import os
import tempfile

_XDG = tempfile.mkdtemp(prefix="galaxy-tests-xdg-")
os.environ["XDG_CONFIG_HOME"] = _XDG
