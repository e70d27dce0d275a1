#include "http/auth.hpp"

#include <pqxx/pqxx>

#include "infra/cached_statement.hpp"
#include "infra/crypto.hpp"

namespace wachat::http {
namespace {

pqxx::binarystring token_hash(std::string_view token) {
  auto d = infra::sha256(token);
  return pqxx::binarystring{d.data(), d.size()};
}

// The token of `Bearer <token>` (the scheme in any case); none when there is no usable one.
std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size() ||
      !std::equal(scheme.begin(), scheme.end(), authorization.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return std::nullopt;
  }
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  if (token.empty() || token.size() > 512) {
    return std::nullopt;
  }
  return token;
}

}  // namespace

bool is_admin(std::string_view authorization, const std::optional<std::string>& admin_token) {
  auto token = bearer_token(authorization);
  return token && admin_token && infra::constant_time_equal(*token, *admin_token);
}

std::optional<principal> authenticate(pqxx::connection_base& conn, std::string_view authorization,
                                      const std::optional<std::string>& admin_token) {
  auto token = bearer_token(authorization);
  if (!token) {
    return std::nullopt;
  }
  if (admin_token && infra::constant_time_equal(*token, *admin_token)) {
    return principal{true, {}, std::nullopt};
  }
  pqxx::nontransaction nt{conn};
  auto r = infra::exec_cached(nt, "auth_token", "SELECT site_id, id FROM api_tokens WHERE token_hash = $1", token_hash(*token));
  if (r.empty()) {
    return std::nullopt;
  }
  return principal{false, r[0][0].as<std::string>(), r[0][1].as<std::string>()};
}

issued_token issue_site_token(pqxx::connection_base& conn, const std::string& site_id) {
  issued_token t{"tok_" + infra::random_hex(8), "wct_" + infra::random_hex(32)};
  pqxx::work w{conn};
  w.exec_params("INSERT INTO api_tokens (id, site_id, token_hash) VALUES ($1, $2, $3)", t.id,
                site_id, token_hash(t.token));
  w.commit();
  return t;
}

}  // namespace wachat::http
