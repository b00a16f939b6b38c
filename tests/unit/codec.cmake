# codec unit tests: list(APPEND WALRUS_UNIT_SOURCES ...) and list(APPEND WALRUS_UNIT_SUITES ...)
list(APPEND WALRUS_UNIT_SOURCES unit/codec_test.cpp unit/codec_safety_test.cpp unit/frame_test.cpp)
list(APPEND WALRUS_UNIT_SUITES codec codec_safety frame)
