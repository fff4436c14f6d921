"""``make demo``: the embedded demo factory on the real test environment (test glue).

Not part of the installed ``vac`` package (setup.py packages ``vac*`` only, so the RPM
ships none of it); run from the source tree as ``python -m vacdemo.demo``.
"""
