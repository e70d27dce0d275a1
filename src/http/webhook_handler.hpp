#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/router.hpp"
#include "infra/metrics.hpp"

namespace wachat::actors {
class intake;
}

namespace wachat::http {

class webhook_waiters;

struct webhook_settings {
  std::optional<std::string> app_secret;
  std::optional<std::string> verify_token;
  std::size_t max_bytes = 4194304;
  // Site verify tokens (API.md §3.2) are looked up (off the HTTP thread) when the env token does
  // not match; `done` may run on any thread.
  std::function<void(std::string token, std::function<void(bool known)> done)>
      site_verify_token_lookup;
};

inline constexpr const char* webhook_path = "/api/modules/live-chat/webhooks/whatsapp";

// GET verification and signed POST intake (API.md §2).
// `waiters` must be the intake's listener: it answers each POST once its commit settled.
void add_webhook_routes(router& r, webhook_settings settings, actors::intake& intake,
                        std::shared_ptr<webhook_waiters> waiters, std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::http
