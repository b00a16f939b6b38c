# walrus-kv core unit tests (needs walrus_kv_core and walrus_proto linked into walrus_unit_tests).
list(APPEND WALRUS_UNIT_SOURCES unit/kv_resp_test.cpp unit/kv_ops_test.cpp unit/kv_table_test.cpp
     unit/kv_store_test.cpp unit/kv_snapshot_test.cpp unit/kv_commands_test.cpp)
list(APPEND WALRUS_UNIT_SUITES kv_resp kv_ops kv_table kv_store kv_snapshot kv_commands)
# The server's option parsing and metrics text: plain code of walrus_kv_server
# (CAF core only), compiled in here so the unit tests need not link the
# server's brokers.
list(APPEND WALRUS_UNIT_SOURCES unit/kv_options_test.cpp unit/kv_metrics_test.cpp
     ${PROJECT_SOURCE_DIR}/apps/kv/server_options.cpp ${PROJECT_SOURCE_DIR}/apps/kv/metrics.cpp)
list(APPEND WALRUS_UNIT_SUITES kv_options kv_metrics)
