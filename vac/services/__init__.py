"""Orchestration: gather facts through adapters, decide through core, apply."""
