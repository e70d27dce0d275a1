#include "infra/uploads.hpp"

#include <pqxx/pqxx>

#include "infra/crypto.hpp"

namespace wachat::infra {

std::optional<upload_row> load_upload(pqxx::connection_base& c, const std::string& key,
                                      const std::string& phone_number_id) {
  pqxx::read_transaction t{c};
  auto r = t.exec_params(
      "SELECT kind, file_name, mime_type, CASE WHEN meta_phone_number_id = $2"
      "   AND meta_uploaded_at > now() - interval '29 days' THEN meta_media_id END"
      " FROM wa_uploads WHERE key = $1",
      key, phone_number_id);
  if (r.empty()) {
    return std::nullopt;
  }
  return upload_row{r[0][0].as<std::string>(), r[0][1].as<std::string>(), r[0][2].as<std::string>(),
                    r[0][3].as<std::optional<std::string>>()};
}

void record_meta_upload(pqxx::connection_base& c, const std::string& key, const std::string& phone_number_id,
                        const std::string& meta_media_id) {
  pqxx::work w{c};
  w.exec_params(
      "UPDATE wa_uploads SET meta_media_id = $3, meta_phone_number_id = $2, meta_uploaded_at = now() WHERE key = $1",
      key, phone_number_id, meta_media_id);
  w.commit();
}

std::string multipart_upload_body(std::string_view file, const std::string& file_name, const std::string& mime_type,
                                  std::string& content_type) {
  std::string boundary;
  do {
    boundary = "wachat-" + random_hex(16);
  } while (file.find(boundary) != std::string_view::npos);
  content_type = "multipart/form-data; boundary=" + boundary;
  auto part = [&](const std::string& headers) { return "--" + boundary + "\r\n" + headers + "\r\n\r\n"; };
  // The name and type come from domain::media_file_name and domain::mime_essence: no quote,
  // control character or line break can end up in these headers.
  std::string out = part("Content-Disposition: form-data; name=\"messaging_product\"") + "whatsapp\r\n" +
                    part("Content-Disposition: form-data; name=\"type\"") + mime_type + "\r\n" +
                    part("Content-Disposition: form-data; name=\"file\"; filename=\"" + file_name +
                         "\"\r\nContent-Type: " + mime_type);
  out.reserve(out.size() + file.size() + boundary.size() + 8);
  out.append(file);
  out += "\r\n--" + boundary + "--\r\n";
  return out;
}

}  // namespace wachat::infra
