#include "http/console_handler.hpp"

#include "domain/console_policy.hpp"
#include "http/console_assets.hpp"
#include "http/responses.hpp"

namespace wachat::http {
namespace {

const console_asset* find_asset(std::string_view name) {
  for (const auto& a : console_assets()) {
    if (a.name == name) {
      return &a;
    }
  }
  return nullptr;
}

// Headers every console answer carries, the 404 too: nothing here may be framed, sniffed or
// leak its URL to another site.
void harden(response& res, const std::string& csp) {
  res.set("Content-Security-Policy", csp);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Cross-Origin-Opener-Policy", "same-origin");
}

void serve(const request_context& rc, const responder& respond, std::string_view name, const std::string& csp) {
  const auto* asset = find_asset(name);
  auto type = domain::console_content_type(name);
  if (asset == nullptr || !type) {
    auto res = json_error(bhttp::status::not_found, "not_found", "No such console file.");
    harden(res, csp);
    return respond(std::move(res));
  }
  // Revalidated on every load (no-cache, not no-store): a new wachatd's console is never mixed
  // with an old cached file, and an unchanged file costs a 304.
  response res{bhttp::status::ok, 11};
  if (rc.req[bhttp::field::if_none_match] == asset->etag) {
    res.result(bhttp::status::not_modified);
  } else {
    res.set(bhttp::field::content_type, *type);
    res.body() = std::string{asset->body};
  }
  res.set(bhttp::field::etag, asset->etag);
  res.set(bhttp::field::cache_control, "no-cache");
  harden(res, csp);
  res.prepare_payload();
  respond(std::move(res));
}

}  // namespace

void add_console_routes(router& r, const std::string& public_url) {
  auto csp = domain::console_csp(public_url);
  r.add(bhttp::verb::get, "/console", 0, [](request_context&, responder respond) {
    response res{bhttp::status::permanent_redirect, 11};
    res.set(bhttp::field::location, "/console/");
    res.set(bhttp::field::cache_control, "no-store");
    res.prepare_payload();
    respond(std::move(res));
  });
  r.add(bhttp::verb::get, "/console/", 0, [csp](request_context& rc, responder respond) {
    serve(rc, respond, "index.html", csp);
  });
  r.add(bhttp::verb::get, "/console/{file}", 0, [csp](request_context& rc, responder respond) {
    serve(rc, respond, rc.params.at("file"), csp);
  });
}

}  // namespace wachat::http
