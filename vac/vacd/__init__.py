"""vacd's process code: the supervising parent (daemon), its back-off supervisor, the
child-role side (rolechild) and logging set-up (logsetup). Services know none of it."""
