#include "infra/stream_tickets.hpp"

#include <pqxx/pqxx>

#include "infra/crypto.hpp"

namespace wachat::infra {
namespace {

pqxx::binarystring ticket_hash(std::string_view ticket) {
  auto d = sha256(ticket);
  return pqxx::binarystring{d.data(), d.size()};
}

}  // namespace

stream_ticket issue_stream_ticket(pqxx::connection_base& conn, const std::string& site_id,
                                  const std::optional<std::string>& token_id, std::chrono::seconds ttl) {
  stream_ticket t{"wst_" + random_hex(32), 0};
  pqxx::work w{conn};
  w.exec("DELETE FROM wa_stream_tickets WHERE expires_at < now() - interval '1 hour'");
  auto r = w.exec_params(
      "INSERT INTO wa_stream_tickets (ticket_hash, site_id, token_id, expires_at) "
      "VALUES ($1, $2, $3, now() + make_interval(secs => $4)) "
      "RETURNING extract(epoch FROM expires_at)::bigint",
      ticket_hash(t.ticket), site_id, token_id, static_cast<std::int64_t>(ttl.count()));
  t.expires_at = r[0][0].as<std::int64_t>();
  w.commit();
  return t;
}

std::optional<std::string> redeem_stream_ticket(pqxx::connection_base& conn, std::string_view ticket) {
  if (ticket.size() != 68 || ticket.substr(0, 4) != "wst_") {
    return std::nullopt;
  }
  pqxx::work w{conn};
  // Deleted whether or not it is still valid: a ticket opens at most one stream, ever.
  auto r = w.exec_params("DELETE FROM wa_stream_tickets WHERE ticket_hash = $1 RETURNING site_id, expires_at > now()",
                         ticket_hash(ticket));
  w.commit();
  if (r.empty() || !r[0][1].as<bool>()) {
    return std::nullopt;
  }
  return r[0][0].as<std::string>();
}

}  // namespace wachat::infra
