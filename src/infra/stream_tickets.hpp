#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <pqxx/connection>

// Stream tickets (migration 018): how a browser opens a site's event stream without a bearer
// header. Cross-process: any wachatd on the database redeems a ticket another one issued, once.
namespace wachat::infra {

struct stream_ticket {
  std::string ticket;           // `wst_<64 hex>`, shown once
  std::int64_t expires_at = 0;  // unix seconds
};

// A new ticket for `site_id`, valid for `ttl`. `token_id`: the site token that asked (none for the
// admin token). Also forgets tickets that expired a while ago.
stream_ticket issue_stream_ticket(pqxx::connection_base& conn, const std::string& site_id,
                                  const std::optional<std::string>& token_id, std::chrono::seconds ttl);

// The site a ticket opens, consuming it; nullopt when it is unknown, used or expired.
std::optional<std::string> redeem_stream_ticket(pqxx::connection_base& conn, std::string_view ticket);

}  // namespace wachat::infra
