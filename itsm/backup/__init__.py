"""Backup machinery: dumpers (postgres, sqlite, redis, media), storages (local, s3), the retention rule and the run
lock, none of which knows the Backup records. `configured` binds them to this deployment's settings; the services
in itsm.services.backups and itsm.services.restore drive them and keep the records."""
