#pragma once
#include <string>
#include <variant>

#include "domain/graph_error_policy.hpp"

namespace pqxx {
class connection_base;
}
namespace wachat::infra {
class blob_store;
class graph_client;
}  // namespace wachat::infra

namespace wachat::actors {

// A send of an uploaded file (issue 14 item 7): puts Meta's media id of the file into the
// send's body, uploading the file to `POST /{phone_number_id}/media` first when Meta has no
// live id of it for this number. Blocks the calling (detached) worker for the upload, which
// happens once per file and number. Returns the body to send, or why it cannot be sent (Meta's
// answer, or 131053 when the file is gone).
std::variant<std::string, domain::graph_error> resolve_upload(pqxx::connection_base& c, infra::blob_store& blobs,
                                                              infra::graph_client& graph,
                                                              const std::string& phone_number_id,
                                                              const std::string& token, const std::string& body);

}  // namespace wachat::actors
