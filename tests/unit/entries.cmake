list(APPEND WALRUS_UNIT_SOURCES unit/entries_test.cpp)
list(APPEND WALRUS_UNIT_SUITES entries)
