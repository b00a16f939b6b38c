# Wire protocol logic (actors/wire, actors/auth) and the retention slots file
# (actors/retention_slots): need the libraries holding them linked into
# walrus_unit_tests.
list(APPEND WALRUS_UNIT_SOURCES unit/wire_test.cpp unit/batch_records_test.cpp unit/auth_test.cpp unit/retention_slots_test.cpp)
list(APPEND WALRUS_UNIT_SUITES wire batch_records auth retention_slots)
