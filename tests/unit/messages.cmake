list(APPEND WALRUS_UNIT_SOURCES unit/messages_test.cpp)
list(APPEND WALRUS_UNIT_SUITES messages)
