#include "actors/outbound/upload_resolver.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "domain/outbound.hpp"
#include "infra/blob_store.hpp"
#include "infra/cached_statement.hpp"
#include "infra/graph_client.hpp"
#include "infra/log.hpp"
#include "infra/uploads.hpp"

namespace wachat::actors {
namespace {

domain::graph_error gone(std::string title) {
  domain::graph_error e;
  e.code = 131053;  // Meta's "media upload error": sending again cannot help
  e.title = std::move(title);
  return e;
}

}  // namespace

std::variant<std::string, domain::graph_error> resolve_upload(pqxx::connection_base& c, infra::blob_store& blobs,
                                                              infra::graph_client& graph,
                                                              const std::string& phone_number_id,
                                                              const std::string& token, const std::string& body) {
  auto b = nlohmann::json::parse(body, nullptr, false);
  if (!b.is_object() || !b[domain::upload_marker].is_string() || !b["type"].is_string()) {
    return body;
  }
  const auto key = b[domain::upload_marker].get<std::string>();
  const auto kind = b["type"].get<std::string>();
  auto row = infra::load_upload(c, key, phone_number_id);
  if (!row) {
    return gone("The uploaded file is no longer kept");
  }
  std::string meta_id;
  if (row->meta_media_id) {
    meta_id = *row->meta_media_id;
  } else {
    auto blob = blobs.open(key);
    if (!blob) {
      return gone("The uploaded file is no longer kept");
    }
    std::string file(blob->size(), '\0');
    std::size_t at = 0;
    while (at < file.size()) {
      auto n = blob->read_at(at, file.data() + at, file.size() - at);
      if (n == 0) {
        return gone("The uploaded file could not be read");
      }
      at += n;
    }
    infra::graph_request req;
    req.method = infra::graph_method::post;
    req.path = "/" + phone_number_id + "/media";
    req.access_token = token;
    req.body = infra::multipart_upload_body(file, row->file_name, row->mime_type, req.content_type);
    file.clear();
    file.shrink_to_fit();
    req.timeout = std::chrono::minutes(5);
    auto res = graph.request_blocking(std::move(req));
    if (!res.ok()) {
      return *res.error;
    }
    auto answer = nlohmann::json::parse(res.body, nullptr, false);
    if (!answer.is_object() || !answer["id"].is_string()) {
      domain::graph_error e;
      e.transport = true;  // an answer without Meta's shape: worth another try
      e.http_status = res.status;
      e.title = "Graph answered the media upload without an id";
      return e;
    }
    meta_id = answer["id"].get<std::string>();
    infra::record_meta_upload(c, key, phone_number_id, meta_id);
  }
  b[kind]["id"] = meta_id;
  b.erase(domain::upload_marker);
  return b.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

upload_helper_actor::behavior_type upload_helper(upload_helper_actor::pointer self, std::string url,
                                                 std::shared_ptr<infra::blob_store> blobs,
                                                 std::shared_ptr<infra::graph_client> graph) {
  return {
      [=](upload_atom, const upload_job& job) {
        upload_outcome out;
        try {
          auto conn = infra::connect_for_probes(url);
          auto resolved = resolve_upload(*conn, *blobs, *graph, job.phone_number_id, job.token, job.body);
          out.reached = true;
          if (auto* e = std::get_if<domain::graph_error>(&resolved)) {
            out.error = *e;
          } else {
            out.body = std::get<std::string>(std::move(resolved));
          }
        } catch (const std::exception& e) {
          infra::log_warn("upload_failed", {{"error", e.what()}});  // tried again later
        }
        self->quit();
        return out;
      },
  };
}

}  // namespace

upload_helper_actor spawn_upload_helper(caf::actor_system& sys, std::string database_url,
                                        std::shared_ptr<infra::blob_store> blobs,
                                        std::shared_ptr<infra::graph_client> graph) {
  return sys.spawn<caf::detached>(upload_helper, std::move(database_url), std::move(blobs), std::move(graph));
}

}  // namespace wachat::actors
