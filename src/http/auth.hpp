#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace pqxx {
class connection_base;
}

namespace wachat::http {

// Who is calling: the admin (every site, admin calls) or one site's token (that site only).
struct principal {
  bool admin = false;
  std::string site_id;
  std::optional<std::string> token_id;  // the site token's id (none for the admin token or a stream ticket)
  bool may_see(const std::string& site) const { return admin || site_id == site; }
};

// Whether `Authorization` carries the admin token: known without the database.
bool is_admin(std::string_view authorization, const std::optional<std::string>& admin_token);

// Resolves `Authorization: Bearer <token>`; nullopt for a missing or unknown token.
// Site tokens are looked up by their SHA-256, never stored or compared in clear.
std::optional<principal> authenticate(pqxx::connection_base& conn, std::string_view authorization,
                                      const std::optional<std::string>& admin_token);

// A new site token and its id: `wct_<64 hex>`, `tok_<16 hex>`.
struct issued_token {
  std::string id;
  std::string token;
};
issued_token issue_site_token(pqxx::connection_base& conn, const std::string& site_id);

}  // namespace wachat::http
