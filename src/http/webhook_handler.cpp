#include "http/webhook_handler.hpp"

#include "actors/inbound/intake.hpp"
#include "http/webhook_waiters.hpp"
#include "domain/webhook_body.hpp"
#include "domain/webhook_signature.hpp"
#include "http/responses.hpp"
#include "infra/url.hpp"
#include "infra/crypto.hpp"

namespace wachat::http {
namespace {

struct webhook_counters {
  infra::metrics::counter* received;
  infra::metrics::counter* bad_signature;
  infra::metrics::counter* rejected_body;
};

bool signature_matches(const infra::hmac_sha256_key& key, std::string_view header,
                       std::string_view body) {
  auto expected = domain::parse_signature_header(header);
  if (!expected) {
    return false;
  }
  auto as_view = [](const std::array<unsigned char, 32>& a) {
    return std::string_view{reinterpret_cast<const char*>(a.data()), a.size()};
  };
  auto raw = key.sign(body);
  if (infra::constant_time_equal(as_view(raw), as_view(*expected))) {
    return true;
  }
  // Meta signs some payloads over their \uXXXX-escaped form (META.md).
  if (auto escaped = domain::meta_unicode_escaped(body)) {
    auto alt = key.sign(*escaped);
    return infra::constant_time_equal(as_view(alt), as_view(*expected));
  }
  return false;
}

}  // namespace

void add_webhook_routes(router& r, webhook_settings settings, actors::intake& intake,
                        std::shared_ptr<webhook_waiters> waiters, std::shared_ptr<infra::metrics> metrics) {
  auto shared = std::make_shared<webhook_settings>(std::move(settings));
  std::shared_ptr<infra::hmac_sha256_key> key;
  if (shared->app_secret) {
    key = std::make_shared<infra::hmac_sha256_key>(*shared->app_secret);
  }
  webhook_counters counters{
      &metrics->get_counter("wachat_webhooks_received_total", "Webhook POSTs received."),
      &metrics->get_counter("wachat_webhooks_bad_signature_total",
                            "Webhook POSTs refused for a missing or wrong signature."),
      &metrics->get_counter("wachat_webhooks_rejected_total",
                            "Signed webhook bodies kept as rejected (not JSON)."),
  };

  r.add(bhttp::verb::get, webhook_path, 0, [shared](request_context& ctx, responder respond) {
    auto mode = infra::query_value(ctx.query, "hub.mode");
    auto token = infra::query_value(ctx.query, "hub.verify_token");
    auto challenge = infra::query_value(ctx.query, "hub.challenge");
    auto answer = [respond, challenge](bool token_ok) {
      if (token_ok && challenge) {
        return respond(text_body(bhttp::status::ok, *challenge, "text/plain"));
      }
      respond(json_error(bhttp::status::forbidden, "forbidden", "Webhook verification failed."));
    };
    if (mode != "subscribe" || !token || token->empty() || token->size() > 256 || !challenge) {
      return answer(false);
    }
    if (shared->verify_token && infra::constant_time_equal(*token, *shared->verify_token)) {
      return answer(true);
    }
    if (!shared->site_verify_token_lookup) {
      return answer(false);
    }
    shared->site_verify_token_lookup(*token, answer);
  });

  r.add(bhttp::verb::post, webhook_path, shared->max_bytes,
        [shared, key, counters, &intake, waiters](request_context& ctx, responder respond) {
          counters.received->fetch_add(1, std::memory_order_relaxed);
          auto header = ctx.req["X-Hub-Signature-256"];
          if (!key || header.empty() || !signature_matches(*key, header, ctx.req.body())) {
            counters.bad_signature->fetch_add(1, std::memory_order_relaxed);
            return respond(json_error(bhttp::status::unauthorized, "unauthorized",
                                      key ? "Missing or invalid X-Hub-Signature-256."
                                          : "Webhook app secret is not configured."));
          }
          auto verdict = domain::classify_webhook_body(ctx.req.body());
          if (!verdict.processable) {
            counters.rejected_body->fetch_add(1, std::memory_order_relaxed);
          }
          // Meta redelivers anything but a 200: if the commit is not done within the commit
          // timeout, the waiters' sweep says 503.
          actors::intake_item item;
          item.ticket = waiters->add(std::move(respond));
          item.body = std::move(ctx.req.body());
          item.status = verdict.processable ? "pending" : "rejected";
          item.error = std::move(verdict.reason);
          intake.submit(std::move(item));
        });
}

}  // namespace wachat::http
