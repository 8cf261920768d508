"""The commands besides ``run`` (which is :mod:`tether.cli`'s own), one module each: its click
command and what it does. Each imports what it needs when it runs, so that starting tether
for a run costs none of them."""
