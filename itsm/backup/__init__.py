"""Backup machinery without Django models: dumpers (postgres, sqlite, redis, media), storages (local, s3), the
retention rule and the run lock. The services in itsm.services.backups drive them and keep the records."""
