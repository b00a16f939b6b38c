# walrus-kv's replicated ops (kv.proto). Included from proto/CMakeLists.txt
# after walrus_proto is defined: include(kv.cmake)
protobuf_generate(TARGET walrus_proto LANGUAGE cpp PROTOS kv.proto APPEND_PATH)
