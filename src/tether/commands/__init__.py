"""The commands, one module each: its click command and what it does (:mod:`tether.cli` is
the table of them, and turns their exceptions into exit codes). Each imports what it needs
when it runs, so that starting tether for a run costs none of the others."""
