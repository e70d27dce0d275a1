#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace pqxx {
class connection_base;
}

// Agents' uploaded files (migration 016) and how one goes to Meta's media endpoint.
namespace wachat::infra {

struct upload_row {
  std::string kind;  // image | document
  std::string file_name;
  std::string mime_type;
  // Meta's id of the file for this phone number, while Meta still keeps it (29 of its 30 days).
  std::optional<std::string> meta_media_id;
};

std::optional<upload_row> load_upload(pqxx::connection_base& c, const std::string& key,
                                      const std::string& phone_number_id);
void record_meta_upload(pqxx::connection_base& c, const std::string& key, const std::string& phone_number_id,
                        const std::string& meta_media_id);

// `POST /{phone_number_id}/media` as Meta documents it: multipart/form-data with
// messaging_product, type and the file. Returns the body; `content_type` gets the header value
// with the boundary, one the file's bytes do not contain.
std::string multipart_upload_body(std::string_view file, const std::string& file_name, const std::string& mime_type,
                                  std::string& content_type);

}  // namespace wachat::infra
