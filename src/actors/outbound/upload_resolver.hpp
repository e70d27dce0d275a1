#pragma once
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "actors/atoms.hpp"
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

// One upload on a thread of its own: a cloud sender hands a send of an uploaded file to an
// upload helper and goes on with the other sends while the file travels to Meta (which takes as
// long as the file, up to minutes).
using upload_atom = caf::atom_constant<caf::atom("upload")>;
struct upload_job {
  std::string phone_number_id;
  std::string token;
  std::string body;  // the send's body, naming the upload (domain::upload_marker)
};
struct upload_outcome {
  bool reached = false;  // false: the database or the file store failed; nothing was decided
  std::string body;      // the body to send, naming Meta's media id
  std::optional<domain::graph_error> error;  // why it cannot be sent (the message never left)
};
using upload_helper_actor = caf::typed_actor<caf::replies_to<upload_atom, upload_job>::with<upload_outcome>>;

// A detached actor with its own database connection that answers one `upload` and quits.
// It shares the store and the client: it may outlive its sender (at shutdown the client is
// stopped, so an upload in flight ends at once with a transport error).
upload_helper_actor spawn_upload_helper(caf::actor_system& sys, std::string database_url,
                                        std::shared_ptr<infra::blob_store> blobs,
                                        std::shared_ptr<infra::graph_client> graph);

}  // namespace wachat::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::upload_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::upload_outcome)
