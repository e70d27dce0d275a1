#include "http/media_handler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "domain/media.hpp"
#include "http/site_queries.hpp"
#include "infra/blob_store.hpp"
#include "infra/chat_views.hpp"
#include "infra/media_store.hpp"
#include "infra/media_urls.hpp"
#include "infra/url.hpp"

namespace wachat::http {
namespace {

// `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf` (RFC 6266): the plain
// form for old clients, without quotes, backslashes or bytes outside printable ASCII.
std::string content_disposition(const infra::blob_meta& meta) {
  std::string plain;
  for (char c : meta.file_name) {
    auto u = static_cast<unsigned char>(c);
    plain += (u < 0x20 || u > 0x7E || c == '"' || c == '\\') ? '_' : c;
  }
  std::string out = meta.attachment ? "attachment" : "inline";
  if (!meta.file_name.empty()) {
    out += "; filename=\"" + plain + "\"; filename*=UTF-8''" + infra::percent_encode(meta.file_name);
  }
  return out;
}

void serve(request_context& ctx, responder& respond, infra::blob_store& blobs) {
  const auto* signer = infra::media_urls();
  const auto key = "chat/" + ctx.params.at("site") + "/" + ctx.params.at("file");
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  auto exp = infra::query_value(ctx.query, "exp").value_or("");
  auto sig = infra::query_value(ctx.query, "sig").value_or("");
  // One answer for every bad signature, so that it tells nothing about which part was wrong,
  // nor whether the file exists.
  if (signer == nullptr || !signer->verify(key, exp, sig, now)) {
    return respond(json_error(bhttp::status::forbidden, "invalid_signature",
                              "The media link is unsigned, altered or expired; read the message again for a fresh one."));
  }
  std::shared_ptr<infra::blob_reader> blob = blobs.open(key);
  if (!blob) {
    return respond(json_error(bhttp::status::not_found, "not_found", "No such media file."));
  }
  const auto size = blob->size();
  file_reply f;
  f.headers = {
      {"Content-Type", blob->meta().content_type},
      {"Content-Disposition", content_disposition(blob->meta())},
      {"Accept-Ranges", "bytes"},
      // Customers' files are never trusted content: no sniffing, no script if opened directly.
      {"X-Content-Type-Options", "nosniff"},
      {"Content-Security-Policy", "default-src 'none'; media-src 'self'; img-src 'self'; sandbox"},
      {"Cache-Control", fmt::format("private, max-age={}", std::max<std::int64_t>(
                                                                          0, std::stoll(exp) - now))},
  };
  auto range_header = ctx.req[bhttp::field::range];
  auto range = range_header.empty() ? domain::byte_range_answer{} : domain::read_byte_range(range_header, size);
  using kind = domain::byte_range_answer::kind;
  if (range.what == kind::unsatisfiable) {
    auto res = json_error(bhttp::status::range_not_satisfiable, "range_not_satisfiable",
                          "The requested range starts past the end of the file.");
    res.set(bhttp::field::content_range, fmt::format("bytes */{}", size));
    return respond(std::move(res));
  }
  f.offset = 0;
  f.length = size;
  if (range.what == kind::partial) {
    f.status = bhttp::status::partial_content;
    f.offset = range.first;
    f.length = range.last - range.first + 1;
    f.headers.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", range.first, range.last, size));
  }
  f.read = [blob](std::uint64_t offset, char* buf, std::size_t n) { return blob->read_at(offset, buf, n); };
  ctx.send_file(std::move(f));
}

}  // namespace

void add_media_routes(router& r, api_context& api, std::shared_ptr<infra::blob_store> blobs,
                      std::function<void()> wake_media) {
  r.add(bhttp::verb::get, "/media/chat/{site}/{file}", 0,
        [blobs](request_context& ctx, responder respond) { serve(ctx, respond, *blobs); });

  add_api_route(r, api, bhttp::verb::post, "/api/conversations/{id}/messages/{message_id}/media/retry",
                api.cfg->api_max_body_bytes, access::any_principal,
                [wake_media](pqxx::connection_base& c, const principal& who, const api_call& call) {
                  auto owner = owner_of(c, call.params.at("id"), who);
                  auto message = parse_id(call.params.at("message_id"));
                  if (!message) {
                    not_found();
                  }
                  auto outcome = infra::request_media_retry(c, owner.id, *message, owner.site);
                  if (outcome == infra::media_retry_outcome::not_found) {
                    not_found();
                  }
                  if (outcome == infra::media_retry_outcome::invalid_state) {
                    fail(bhttp::status::conflict, "invalid_state",
                         "Only a customer's media message whose media_status is 'failed' can be fetched again.");
                  }
                  // Read before the media workers are woken: the answer shows the message as
                  // the retry left it (pending), not as a fast worker may already have changed it.
                  pqxx::read_transaction t{c};
                  auto m = infra::load_message(t, *message);
                  t.commit();
                  wake_media();
                  return json_body(bhttp::status::accepted,
                                   dump(nlohmann::json{{"message", m ? *m : nlohmann::json(nullptr)}}));
                });
}

}  // namespace wachat::http
