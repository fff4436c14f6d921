"""Pure decisions: no I/O, no clock, no global randomness (time and RNG are passed in)."""
