#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace pqxx {
class connection_base;
}

namespace wachat::infra {

// Whose a conversation is: its site, and its customer's key (their phone, else their BSUID, else
// the conversation itself): the key the inbound side sends that customer's messages under, so a
// dashboard write or send reaches the same conversation actor as they do.
struct conversation_owner {
  std::string site;
  std::string key;
};

// None when there is no such conversation. Throws when the database cannot be read.
std::optional<conversation_owner> find_conversation_owner(pqxx::connection_base& c, std::int64_t conversation_id);

}  // namespace wachat::infra
