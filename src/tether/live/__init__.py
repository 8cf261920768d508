"""What a run serves while it goes on (``--prometheus-listen``): the exporter, which reads
the live summary on the run's loop and owns the endpoint's life
(:mod:`~tether.live.exporter`), and the Prometheus metric families it serves
(:mod:`~tether.live.prometheus`)."""
