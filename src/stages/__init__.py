"""Pipeline stages in order; each module has ``outputs``, ``inputs``, ``fallback``, ``config_parts`` and ``run``."""
