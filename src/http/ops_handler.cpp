#include "http/ops_handler.hpp"

#include <boost/asio/steady_timer.hpp>

#include "actors/db/db_probe.hpp"
#include "http/responses.hpp"

namespace wachat::http {

void add_ops_routes(router& r, actors::db_probe& probe, std::shared_ptr<infra::metrics> metrics) {
  r.add(bhttp::verb::get, "/healthz", 0, [](request_context&, responder respond) {
    respond(json_body(bhttp::status::ok, R"({"status":"ok"})"));
  });
  r.add(bhttp::verb::get, "/readyz", 0, [&probe](request_context& ctx, responder respond) {
    // A hung database must still get an answer: not ready.
    auto timer = std::make_shared<boost::asio::steady_timer>(ctx.executor, std::chrono::seconds(2));
    timer->async_wait([respond, timer](boost::system::error_code ec) {
      if (!ec) {
        respond(json_error(bhttp::status::service_unavailable, "unavailable",
                           "Database did not answer in time."));
      }
    });
    probe.check([respond](bool ok) {
      if (ok) {
        respond(json_body(bhttp::status::ok, R"({"status":"ready"})"));
      } else {
        respond(json_error(bhttp::status::service_unavailable, "unavailable",
                           "Database is not answering."));
      }
    });
  });
  r.add(bhttp::verb::get, "/metrics", 0, [metrics](request_context&, responder respond) {
    respond(text_body(bhttp::status::ok, metrics->render(), "text/plain; version=0.0.4"));
  });
}

}  // namespace wachat::http
