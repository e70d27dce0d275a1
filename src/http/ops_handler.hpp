#pragma once
#include <memory>

#include "http/router.hpp"
#include "infra/metrics.hpp"

namespace wachat::actors {
class db_probe;
}

namespace wachat::http {

// /healthz, /readyz and /metrics (API.md §3.7).
void add_ops_routes(router& r, actors::db_probe& probe, std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::http
