"""Driver: one search run end to end. ``search`` is the sequence (preflight, resume policy, Tune
run, summary); ``preflight`` the checks before any work, ``resume`` the resume policy and the
saved config, ``ray_setup`` Ray's start and logging, ``tuner`` the Tune run, ``final`` final
training of the best networks, ``checkpoints`` and ``progress`` Ray callbacks of the run."""
