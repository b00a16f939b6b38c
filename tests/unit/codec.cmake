# codec unit tests: list(APPEND WALRUS_UNIT_SOURCES ...) and list(APPEND WALRUS_UNIT_SUITES ...)
