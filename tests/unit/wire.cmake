# Wire protocol logic (actors/wire, actors/auth): needs the library holding
# wire.cpp and auth.cpp linked into walrus_unit_tests.
list(APPEND WALRUS_UNIT_SOURCES unit/wire_test.cpp unit/auth_test.cpp)
list(APPEND WALRUS_UNIT_SUITES wire auth)
