#pragma once
#include <memory>

#include "http/api_common.hpp"

namespace wachat::infra {
class blob_store;
}

namespace wachat::http {

// POST /api/sites/{site}/media: an agent's file (the request body, its type in Content-Type,
// `?filename=`, `?type=image|document`) kept in the blob store, to be sent by its id
// (`{"type": "image", "media_id": ...}`): wachat uploads it to Meta and sends it by Meta's id,
// for files Meta could not fetch by link.
void add_upload_routes(router& r, api_context& api, std::shared_ptr<infra::blob_store> blobs);

}  // namespace wachat::http
