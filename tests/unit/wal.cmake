# wal unit tests: one suite per concern, each its own ctest entry.
list(APPEND WALRUS_UNIT_SOURCES
  unit/wal_format_test.cpp
  unit/wal_log_test.cpp
  unit/wal_recovery_test.cpp
  unit/wal_faults_test.cpp
  unit/wal_sync_test.cpp
  unit/wal_cursor_test.cpp
  unit/wal_retention_test.cpp
)
list(APPEND WALRUS_UNIT_SUITES
  wal_format
  wal_log
  wal_recovery
  wal_faults
  wal_sync
  wal_cursor
  wal_retention
)
