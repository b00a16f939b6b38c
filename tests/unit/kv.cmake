# walrus-kv core unit tests (needs walrus_kv_core and walrus_proto linked into walrus_unit_tests).
list(APPEND WALRUS_UNIT_SOURCES unit/kv_resp_test.cpp unit/kv_ops_test.cpp unit/kv_store_test.cpp
     unit/kv_snapshot_test.cpp unit/kv_commands_test.cpp)
list(APPEND WALRUS_UNIT_SUITES kv_resp kv_ops kv_store kv_snapshot kv_commands)
