"""The results file (``--results PATH``): one JSON line per outcome, written as the run goes
(:mod:`~tether.results.writer`), then one closing line with what no single outcome carries;
each line's encoding and its decoding side by side (:mod:`~tether.results.lines`); a run's
summary rebuilt from one or more files, streaming (:mod:`~tether.results.rebuild`), which
``tether report`` renders."""
