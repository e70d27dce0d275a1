#pragma once
#include <functional>
#include <memory>

#include "http/api_common.hpp"

namespace wachat::infra {
class blob_store;
}

namespace wachat::http {

// Customers' media (API.md §3.6): `GET /media/chat/{site}/{file}` serves a stored file to
// whoever holds a valid signed URL (no bearer token: the URL is the credential, as in an
// <img src>), with byte ranges; `POST .../messages/{message_id}/media/retry` fetches a failed
// one again, and `wake_media` tells the media workers at once.
void add_media_routes(router& r, api_context& api, std::shared_ptr<infra::blob_store> blobs,
                      std::function<void()> wake_media);

}  // namespace wachat::http
