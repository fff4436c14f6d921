"""ConfigHolder: the roles that running machines use keep a configuration to serve with."""

from __future__ import annotations

import os

from vac.core.configtypes import Config, Settings
from vac.errors import ConfigError
from vac.services.rolekit import ConfigHolder


def _cfg(port):
    return Config(settings=Settings(vac_space="s.example.com", mjf_port=port))


def test_holder_serves_a_fallback_until_valid_then_keeps_the_last_valid(paths):
    os.makedirs(os.path.dirname(paths.etc_vac_conf))
    box = {}

    def load(_paths):
        if isinstance(box["next"], Exception):
            raise box["next"]
        return box["next"]

    def step(value, text):
        box["next"] = value
        with open(paths.etc_vac_conf, "w") as f:
            f.write(text)                                  # a new signature: reloaded
        holder.reload()
        return holder.cfg.settings.mjf_port, holder.valid

    holder = ConfigHolder(paths, load)
    assert step(ConfigError(["x"], fallback=_cfg(81)), "a") == (81, False)
    assert step(ConfigError(["y"], fallback=_cfg(82)), "bb") == (82, False)
    assert step(_cfg(83), "ccc") == (83, True)
    assert step(ConfigError(["z"], fallback=_cfg(84)), "dddd") == (83, True)
    assert step(ConfigError(["unreadable"]), "eeeee") == (83, True)
