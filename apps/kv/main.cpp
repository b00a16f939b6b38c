// walrus-kv: the Redis-protocol key-value server replicated by walrus.
// `walrus-kv --help` documents the command line; docs/operations.md the rest.
#include <cstdio>

#include "apps/kv/server.hpp"
#include "base/allocator.hpp"

int main(int argc, char** argv) {
  using namespace walrus::kv::server;
  walrus::tune_allocator();
  auto parsed = parse_options(argc, argv);
  if (!parsed) {
    std::fprintf(stderr, "walrus-kv: %s\n", parsed.error().message().c_str());
    return 2;
  }
  switch (parsed->mode) {
    case run_mode::help: std::fputs(usage().c_str(), stdout); return 0;
    case run_mode::primary:
    case run_mode::replica: return run_server(*parsed);
    case run_mode::demo: return run_demo(*parsed);
  }
  return 2;
}
