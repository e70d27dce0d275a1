#include "http/uploads_handler.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "domain/media.hpp"
#include "http/site_queries.hpp"
#include "infra/blob_store.hpp"
#include "infra/media_urls.hpp"
#include "infra/url.hpp"

namespace wachat::http {
namespace {

// The largest file Meta takes (a document); images are held to their own 5 MB below.
constexpr std::size_t max_upload = 100 * 1024 * 1024;

}  // namespace

void add_upload_routes(router& r, api_context& api, std::shared_ptr<infra::blob_store> blobs) {
  add_api_route(
      r, api, bhttp::verb::post, "/api/sites/{site}/media", max_upload, access::any_principal,
      [blobs](pqxx::connection_base& c, const principal& who, const api_call& call) {
        const auto& site = call.params.at("site");
        require_site(c, who, site);
        const auto mime = domain::mime_essence(call.content_type);
        if (mime.empty() || mime == "application/json" || mime == "application/x-www-form-urlencoded" ||
            mime.rfind("multipart/", 0) == 0) {
          fail(bhttp::status::unsupported_media_type, "invalid_field",
               "Send the file itself as the body, with its MIME type as Content-Type (e.g. image/jpeg).");
        }
        auto kind = infra::query_value(call.query, "type")
                        .value_or(mime == "image/jpeg" || mime == "image/png" ? "image" : "document");
        if (kind != "image" && kind != "document") {
          fail(bhttp::status::unprocessable_entity, "invalid_field", "type must be image or document.");
        }
        if (!domain::media_mime_accepted(kind, mime)) {
          fail(bhttp::status::unprocessable_entity, "invalid_field",
               "WhatsApp takes images as image/jpeg or image/png; send other files as documents.");
        }
        if (call.body.empty()) {
          fail(bhttp::status::unprocessable_entity, "invalid_field", "The file is empty.");
        }
        const auto limit = domain::media_size_limit(kind, false);
        if (call.body.size() > limit) {
          fail(bhttp::status::payload_too_large, "payload_too_large",
               "WhatsApp takes " + kind + "s of at most " + std::to_string(limit / (1024 * 1024)) + " MB.");
        }
        const auto stamp = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
        auto name = domain::media_file_name(infra::query_value(call.query, "filename").value_or(""), kind, stamp, mime);
        auto made = blobs->create(site, name, {mime, name, kind == "document"});
        if (auto* why = std::get_if<std::string>(&made)) {
          fail(bhttp::status::service_unavailable, "unavailable", "The file could not be stored: " + *why);
        }
        auto writer = std::move(std::get<std::unique_ptr<infra::blob_writer>>(made));
        if (!writer->write(call.body.data(), call.body.size())) {
          fail(bhttp::status::service_unavailable, "unavailable", "The file could not be stored: " + writer->error());
        }
        if (auto why = writer->commit()) {
          fail(bhttp::status::service_unavailable, "unavailable", "The file could not be stored: " + *why);
        }
        const auto key = writer->key();
        try {
          pqxx::work w{c};
          w.exec_params(
              "INSERT INTO wa_uploads (key, site_id, kind, file_name, mime_type, file_size) VALUES ($1, $2, $3, $4, $5, $6)",
              key, site, kind, name, mime, static_cast<std::int64_t>(call.body.size()));
          w.commit();
        } catch (...) {
          blobs->remove(key);  // no row, no file
          throw;
        }
        nlohmann::json media{{"id", key},
                             {"type", kind},
                             {"file_name", name},
                             {"file_size", call.body.size()},
                             {"file_mime_type", mime},
                             {"file_url", nullptr}};
        if (const auto* signer = infra::media_urls()) {
          media["file_url"] = signer->url_for(key, static_cast<std::int64_t>(std::time(nullptr)));
        }
        return json_body(bhttp::status::created, dump(nlohmann::json{{"media", media}}));
      });
}

}  // namespace wachat::http
