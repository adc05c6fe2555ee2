"""A probe handler that misbehaves on demand (fail N times, fail until fixed, crash, hang, raise),
installed beside a service's real handlers for fault tests of real worker processes.

Its attempts are recorded on their own autocommit connection (they survive the handler's rollback);
its effect is written in the handler's transaction, so `probe_effect` counts applied effects.
"""
