"""Simulation doubles for the factory simulator (in-memory hypervisor)."""
