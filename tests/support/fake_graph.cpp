#include "support/fake_graph.hpp"

#include <algorithm>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "infra/url.hpp"
#include "infra/crypto.hpp"
#include "infra/thread_priority.hpp"

namespace wachat::test {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using infra::percent_encode;
using http_response = bhttp::response<bhttp::string_body>;

// '*' matches any run of characters; everything else matches itself.
bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_t = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}


std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string fbtrace_id() { return "Afake" + infra::random_hex(8); }

std::string meta_error_body(int code, const std::string& message, int subcode,
                            const std::string& details, const std::string& type) {
  json error = {{"message", message}, {"type", type}, {"code", code}, {"fbtrace_id", fbtrace_id()}};
  if (subcode != 0) {
    error["error_subcode"] = subcode;
  }
  if (!details.empty()) {
    error["error_data"] = {{"messaging_product", "whatsapp"}, {"details", details}};
  }
  return dump(json{{"error", error}});
}

struct answer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

answer json_answer(int status, const json& j) { return {status, dump(j), "application/json"}; }

answer error_answer(int status, int code, const std::string& message, int subcode = 0,
                    const std::string& details = {},
                    const std::string& type = "OAuthException") {
  return {status, meta_error_body(code, message, subcode, details, type), "application/json"};
}

answer unknown_object(const std::string& method, const std::string& id) {
  return error_answer(400, 100,
                      "Unsupported " + method + " request. Object with ID '" + id +
                          "' does not exist, cannot be loaded due to missing permissions, or "
                          "does not support this operation. Please read the Graph API "
                          "documentation at https://developers.facebook.com/docs/graph-api",
                      33, {}, "GraphMethodException");
}

std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    auto slash = path.find('/');
    auto part = path.substr(0, slash);
    if (!part.empty()) {
      out.emplace_back(part);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return out;
}

// What the session does with one request: wait, then answer or hang up.
struct plan {
  std::chrono::milliseconds delay{0};
  bool close = false;
  answer reply;
};

struct phone {
  std::string display_phone_number;
  std::string verified_name;
  std::string quality_rating;
};

struct media_item {
  std::string mime_type;
  std::string bytes;
  std::string url;
};

struct script_rule {
  std::string method;
  std::string path_glob;
  scripted_response response;
  int times;
};

class session_base {
 public:
  virtual ~session_base() = default;
  // Closes the connection if it waits for a request; false if it is still writing an answer.
  virtual bool close_if_idle() = 0;
  virtual void close() = 0;
};

}  // namespace

std::optional<std::string> recorded_call::param(const std::string& key) const {
  return infra::query_value(params, key);
}

scripted_response scripted_response::graph_error(int http_status, int code, std::string message,
                                                 int subcode, std::string details,
                                                 std::string type) {
  scripted_response r;
  r.status = http_status;
  r.body = meta_error_body(code, message, subcode, details, type);
  return r;
}

scripted_response scripted_response::json(int http_status, std::string body) {
  scripted_response r;
  r.status = http_status;
  r.body = std::move(body);
  return r;
}

scripted_response scripted_response::delayed(std::chrono::milliseconds delay) {
  scripted_response r;
  r.what = action::pass_through;
  r.delay = delay;
  return r;
}

scripted_response scripted_response::close_connection() {
  scripted_response r;
  r.what = action::close_connection;
  return r;
}

namespace detail {

struct fake_graph_core {
  fake_graph::options opts;
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::optional<ssl::context> tls;
  std::thread thread;
  std::uint16_t port = 0;
  std::string base_url;
  std::atomic<std::uint64_t> connections{0};

  mutable std::mutex mu;
  mutable std::condition_variable calls_changed;
  std::vector<recorded_call> calls;
  std::vector<script_rule> rules;
  std::set<std::string> tokens;
  std::map<std::string, phone> phones;
  std::map<std::string, std::vector<json>> templates;
  std::map<std::string, media_item> media;
  std::vector<uploaded_media> uploads;
  std::uint64_t sends = 0;

  // I/O thread only.
  std::map<std::uint64_t, std::weak_ptr<session_base>> sessions;

  void do_accept();
  plan decide(const bhttp::request<bhttp::string_body>& req, std::uint64_t connection);
  answer route(const recorded_call& call);
  answer send_message(const std::string& phone_id, const recorded_call& call);
  answer list_templates(const std::string& waba_id, const recorded_call& call);
  answer get_object(const std::string& id, const recorded_call& call);
  answer download_media(const recorded_call& call);
  answer upload_media(const std::string& phone_id, const recorded_call& call);
  bool authorized(const recorded_call& call) const;
};

}  // namespace detail

namespace {

// One connection: read a request, consult the fake, maybe wait, answer or hang up, repeat.
template <class Stream>
class session : public session_base, public std::enable_shared_from_this<session<Stream>> {
 public:
  static constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;

  session(Stream stream, detail::fake_graph_core& fake, std::uint64_t id)
      : stream_(std::move(stream)), fake_(fake), id_(id), timer_(fake.ioc) {}

  void start() {
    if constexpr (is_tls) {
      tcp().expires_after(std::chrono::seconds(10));
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  return self->close();
                                }
                                self->do_read();
                              });
    } else {
      do_read();
    }
  }

  bool close_if_idle() override {
    if (idle_) {
      close();
    }
    // Still writing: the answer may already be with the client while its write completion
    // has not run here yet. The caller asks again shortly.
    return !writing_;
  }

  void close() override {
    beast::error_code ec;
    timer_.cancel();
    tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp().socket().close(ec);
  }

 private:
  beast::tcp_stream& tcp() {
    if constexpr (is_tls) {
      return beast::get_lowest_layer(stream_);
    } else {
      return stream_;
    }
  }

  void do_read() {
    idle_ = true;
    parser_.emplace();
    parser_->body_limit(64 * 1024 * 1024);
    tcp().expires_never();
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    idle_ = false;
    if (ec) {
      return close();
    }
    req_ = parser_->release();
    plan_ = fake_.decide(req_, id_);
    if (plan_.delay.count() > 0) {
      timer_.expires_after(plan_.delay);
      timer_.async_wait([self = this->shared_from_this()](beast::error_code wait_ec) {
        if (!wait_ec) {
          self->act();
        }
      });
      return;
    }
    act();
  }

  void act() {
    if (plan_.close) {
      return close();
    }
    res_ = std::make_shared<http_response>(static_cast<bhttp::status>(plan_.reply.status), 11);
    res_->set(bhttp::field::content_type, plan_.reply.content_type);
    res_->set(bhttp::field::server, "fake-graph");
    res_->body() = std::move(plan_.reply.body);
    res_->keep_alive(req_.keep_alive());
    res_->prepare_payload();
    tcp().expires_after(std::chrono::seconds(30));
    writing_ = true;
    bhttp::async_write(stream_, *res_,
                       [self = this->shared_from_this()](beast::error_code write_ec, std::size_t) {
                         self->writing_ = false;
                         if (write_ec || !self->res_->keep_alive()) {
                           return self->close();
                         }
                         self->do_read();
                       });
  }

  Stream stream_;
  detail::fake_graph_core& fake_;
  std::uint64_t id_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::request<bhttp::string_body> req_;
  std::shared_ptr<http_response> res_;
  plan plan_;
  bool idle_ = false;
  bool writing_ = false;
};

}  // namespace

void detail::fake_graph_core::do_accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != net::error::operation_aborted) {
        do_accept();
      }
      return;
    }
    auto id = connections.fetch_add(1) + 1;
    std::shared_ptr<session_base> s;
    if (tls) {
      auto tls_session = std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(
          beast::ssl_stream<beast::tcp_stream>(std::move(socket), *tls), *this, id);
      tls_session->start();
      s = tls_session;
    } else {
      auto plain = std::make_shared<session<beast::tcp_stream>>(
          beast::tcp_stream(std::move(socket)), *this, id);
      plain->start();
      s = plain;
    }
    for (auto it = sessions.begin(); it != sessions.end();) {
      it = it->second.expired() ? sessions.erase(it) : std::next(it);
    }
    sessions[id] = s;
    do_accept();
  });
}

plan detail::fake_graph_core::decide(const bhttp::request<bhttp::string_body>& req,
                              std::uint64_t connection) {
  recorded_call call;
  call.method = std::string{req.method_string()};
  auto [path, query] = infra::split_target(req.target());
  call.path = std::string{path};
  call.query = std::string{query};
  call.params = infra::parse_query(query);
  for (const auto& field : req) {
    call.headers[lower(std::string{field.name_string()})] = std::string{field.value()};
  }
  call.body = req.body();
  call.connection = connection;
  call.at = std::chrono::steady_clock::now();

  plan out;
  std::lock_guard lock{mu};
  std::optional<scripted_response> hit;
  for (auto it = rules.begin(); it != rules.end(); ++it) {
    if ((it->method.empty() || it->method == call.method) && glob_match(it->path_glob, call.path)) {
      hit = it->response;
      if (it->times > 0 && --it->times == 0) {
        rules.erase(it);
      }
      break;
    }
  }
  if (!hit) {
    out.reply = route(call);
  } else {
    out.delay = hit->delay;
    switch (hit->what) {
      case scripted_response::action::close_connection:
        out.close = true;
        break;
      case scripted_response::action::reply:
        out.reply = {hit->status, hit->body, hit->content_type};
        break;
      case scripted_response::action::pass_through:
        out.reply = route(call);
        break;
    }
  }
  call.answered_status = out.close ? 0 : out.reply.status;
  calls.push_back(std::move(call));
  calls_changed.notify_all();
  return out;
}

bool detail::fake_graph_core::authorized(const recorded_call& call) const {
  auto it = call.headers.find("authorization");
  if (it == call.headers.end()) {
    return false;
  }
  std::string_view value{it->second};
  if (value.size() < 7 || lower(std::string{value.substr(0, 7)}) != "bearer ") {
    return false;
  }
  return tokens.contains(std::string{value.substr(7)});
}

answer detail::fake_graph_core::route(const recorded_call& call) {
  if (call.path.starts_with("/whatsapp_business/attachments")) {
    return download_media(call);
  }
  auto parts = split_path(call.path);
  if (parts.empty() || parts[0] != opts.version) {
    return error_answer(400, 2500, "Unknown path components: " + call.path);
  }
  if (!authorized(call)) {
    return error_answer(401, 190, "Invalid OAuth access token - Cannot parse access token");
  }
  if (parts.size() == 2 && call.method == "GET") {
    return get_object(parts[1], call);
  }
  if (parts.size() == 3 && parts[2] == "messages" && call.method == "POST") {
    return send_message(parts[1], call);
  }
  if (parts.size() == 3 && parts[2] == "media" && call.method == "POST") {
    return upload_media(parts[1], call);
  }
  if (parts.size() == 3 && parts[2] == "message_templates" && call.method == "GET") {
    return list_templates(parts[1], call);
  }
  return error_answer(400, 100, "Unsupported " + call.method + " request.", 0, {},
                      "GraphMethodException");
}

answer detail::fake_graph_core::get_object(const std::string& id, const recorded_call& call) {
  if (auto p = phones.find(id); p != phones.end()) {
    json all = {{"display_phone_number", p->second.display_phone_number},
                {"verified_name", p->second.verified_name},
                {"quality_rating", p->second.quality_rating},
                {"id", id}};
    auto fields = call.param("fields");
    if (!fields || fields->empty()) {
      return json_answer(200, all);
    }
    // Meta answers the fields asked for, plus the id.
    json out = {{"id", id}};
    std::string_view rest{*fields};
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string name{rest.substr(0, comma)};
      if (all.contains(name)) {
        out[name] = all[name];
      }
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    return json_answer(200, out);
  }
  if (auto m = media.find(id); m != media.end()) {
    auto digest = infra::sha256(m->second.bytes);
    return json_answer(200, {{"messaging_product", "whatsapp"},
                             {"url", m->second.url},
                             {"mime_type", m->second.mime_type},
                             {"sha256", infra::hex_encode(digest.data(), digest.size())},
                             {"file_size", m->second.bytes.size()},
                             {"id", id}});
  }
  return unknown_object("get", id);
}

answer detail::fake_graph_core::send_message(const std::string& phone_id, const recorded_call& call) {
  if (!phones.contains(phone_id)) {
    return unknown_object("post", phone_id);
  }
  auto body = json::parse(call.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return error_answer(400, 100, "(#100) Invalid parameter", 0, "The request body is not JSON.");
  }
  if (body.value("messaging_product", "") != "whatsapp") {
    return error_answer(400, 100, "(#100) The parameter messaging_product is required.");
  }
  if (body.contains("status")) {
    if (body.value("status", "") != "read" || !body.contains("message_id")) {
      return error_answer(400, 100, "(#100) Invalid parameter", 0,
                          "status must be read and message_id is required");
    }
    return json_answer(200, {{"success", true}});
  }
  // `to` (a phone), or `recipient` (a business-scoped user id) for a customer without a phone.
  const char* to_key = body.contains("to") ? "to" : "recipient";
  if (!body.contains(to_key) || !body[to_key].is_string()) {
    return error_answer(400, 100, "(#100) The parameter to is required.");
  }
  std::string type = body.value("type", "text");
  if (!body.contains(type) || !body[type].is_object()) {
    return error_answer(400, 100, "(#100) The parameter " + type + " is required.");
  }
  if (type == "text" && !(body["text"].contains("body") && body["text"]["body"].is_string())) {
    return error_answer(400, 100, "(#100) The parameter text['body'] is required.");
  }
  if (type == "template" && !(body["template"].contains("name") &&
                              body["template"].contains("language"))) {
    return error_answer(400, 100, "(#100) The parameter template['name'] is required.");
  }
  std::string input = body[to_key].get<std::string>();
  std::string wa_id;
  for (char c : input) {
    if (c >= '0' && c <= '9') {
      wa_id.push_back(c);
    }
  }
  auto wamid = "wamid.FAKE" + std::to_string(++sends) + "_" + infra::random_hex(8);
  return json_answer(200, {{"messaging_product", "whatsapp"},
                           {"contacts", json::array({{{"input", input}, {"wa_id", wa_id}}})},
                           {"messages", json::array({{{"id", wamid}}})}});
}

answer detail::fake_graph_core::list_templates(const std::string& waba_id, const recorded_call& call) {
  auto it = templates.find(waba_id);
  if (it == templates.end()) {
    return unknown_object("get", waba_id);
  }
  const auto& all = it->second;
  std::size_t limit = 25;
  if (auto l = call.param("limit")) {
    limit = std::clamp<std::size_t>(std::strtoul(l->c_str(), nullptr, 10), 1, 1000);
  }
  std::size_t start = 0;
  if (auto after = call.param("after")) {
    auto decoded = infra::base64_decode(*after);
    std::string text = decoded ? std::string{decoded->begin(), decoded->end()} : std::string{};
    if (!text.starts_with("pos:")) {
      return error_answer(400, 100, "(#100) Invalid cursor");
    }
    start = std::strtoul(text.c_str() + 4, nullptr, 10);
  }
  start = std::min(start, all.size());
  auto end = std::min(all.size(), start + limit);
  json data = json::array();
  for (auto i = start; i < end; ++i) {
    data.push_back(all[i]);
  }
  auto cursor = [](std::size_t pos) {
    auto text = "pos:" + std::to_string(pos);
    return infra::base64_encode(reinterpret_cast<const unsigned char*>(text.data()), text.size());
  };
  json paging = {{"cursors", {{"before", cursor(start)}, {"after", cursor(end)}}}};
  if (end < all.size()) {
    // Meta's next link repeats the query with the new cursor, as an absolute URL.
    std::string next = base_url + call.path + "?";
    for (const auto& [key, value] : call.params) {
      if (key != "after") {
        next += percent_encode(key) + "=" + percent_encode(value) + "&";
      }
    }
    next += "after=" + percent_encode(cursor(end));
    paging["next"] = next;
  }
  return json_answer(200, {{"data", data}, {"paging", paging}});
}

answer detail::fake_graph_core::download_media(const recorded_call& call) {
  if (!authorized(call)) {
    return error_answer(401, 190, "Invalid OAuth access token - Cannot parse access token");
  }
  auto mid = call.param("mid").value_or("");
  auto it = media.find(mid);
  if (it == media.end()) {
    return {404, "Not Found", "text/plain"};
  }
  return {200, it->second.bytes, it->second.mime_type};
}

// POST /{phone_number_id}/media: multipart/form-data with messaging_product, type and file, as
// Meta documents it; answers {"id"}. Parsed just enough for tests to see what arrived.
answer detail::fake_graph_core::upload_media(const std::string& phone_id, const recorded_call& call) {
  if (!phones.contains(phone_id)) {
    return unknown_object("post", phone_id);
  }
  auto ct = call.headers.count("content-type") ? call.headers.at("content-type") : std::string{};
  auto at = ct.find("boundary=");
  if (ct.rfind("multipart/form-data", 0) != 0 || at == std::string::npos) {
    return error_answer(400, 100, "(#100) The media upload must be multipart/form-data.");
  }
  const auto delimiter = "--" + ct.substr(at + 9);
  uploaded_media up;
  up.phone_number_id = phone_id;
  std::size_t pos = call.body.find(delimiter);
  while (pos != std::string::npos) {
    pos += delimiter.size();
    if (call.body.compare(pos, 2, "--") == 0) {
      break;  // the closing delimiter
    }
    auto head_end = call.body.find("\r\n\r\n", pos);
    auto next = call.body.find("\r\n" + delimiter, head_end);
    if (head_end == std::string::npos || next == std::string::npos) {
      return error_answer(400, 100, "(#100) Malformed multipart body.");
    }
    auto head = call.body.substr(pos, head_end - pos);
    auto value = call.body.substr(head_end + 4, next - head_end - 4);
    auto field = [&](const std::string& key) {
      auto k = head.find(key + "=\"");
      if (k == std::string::npos) return std::string{};
      auto start = k + key.size() + 2;
      return head.substr(start, head.find('"', start) - start);
    };
    auto name = field("name");
    if (name == "messaging_product") up.messaging_product = value;
    if (name == "type") up.type = value;
    if (name == "file") {
      up.filename = field("filename");
      if (auto c = head.find("Content-Type: "); c != std::string::npos) {
        up.content_type = head.substr(c + 14, head.find("\r\n", c) == std::string::npos ? std::string::npos
                                                                                          : head.find("\r\n", c) - c - 14);
      }
      up.bytes = value;
    }
    pos = next + 2;
    pos = call.body.find(delimiter, pos);
  }
  if (up.messaging_product != "whatsapp" || up.bytes.empty()) {
    return error_answer(400, 100, "(#100) messaging_product and file are required.");
  }
  up.id = "up." + std::to_string(uploads.size() + 1);
  uploads.push_back(up);
  return json_answer(200, {{"id", up.id}});
}

std::vector<uploaded_media> fake_graph::uploads() const {
  std::lock_guard lock{impl_->mu};
  return impl_->uploads;
}

fake_graph::fake_graph() : fake_graph(options{}) {}

fake_graph::fake_graph(options opts) : impl_(std::make_unique<detail::fake_graph_core>()) {
  impl_->opts = std::move(opts);
  impl_->tokens = impl_->opts.valid_tokens;
  if (impl_->opts.tls) {
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->use_certificate_chain(
        net::buffer(impl_->opts.tls->cert_pem.data(), impl_->opts.tls->cert_pem.size()));
    impl_->tls->use_private_key(
        net::buffer(impl_->opts.tls->key_pem.data(), impl_->opts.tls->key_pem.size()),
        ssl::context::pem);
  }
  tcp::endpoint ep{net::ip::make_address("127.0.0.1"), 0};
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->base_url = std::string{impl_->opts.tls ? "https://" : "http://"} +
                    impl_->opts.public_host + ":" + std::to_string(impl_->port);
  impl_->do_accept();
  impl_->thread = std::thread([this] {
    if (impl_->opts.background) {
      infra::lower_this_thread_priority();
    }
    impl_->ioc.run();
  });
}

fake_graph::~fake_graph() {
  net::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    for (auto& [id, weak] : impl_->sessions) {
      if (auto s = weak.lock()) {
        s->close();
      }
    }
    // Handlers still queued (aborted reads, delays) are dropped with the io_context.
    impl_->ioc.stop();
  });
  impl_->thread.join();
}

std::uint16_t fake_graph::port() const { return impl_->port; }

std::string fake_graph::base_url() const { return impl_->base_url; }

const std::string& fake_graph::version() const { return impl_->opts.version; }

void fake_graph::add_token(const std::string& token) {
  std::lock_guard lock{impl_->mu};
  impl_->tokens.insert(token);
}

void fake_graph::remove_token(const std::string& token) {
  std::lock_guard lock{impl_->mu};
  impl_->tokens.erase(token);
}

void fake_graph::add_phone(const std::string& phone_number_id,
                           const std::string& display_phone_number,
                           const std::string& verified_name, const std::string& quality_rating) {
  std::lock_guard lock{impl_->mu};
  impl_->phones[phone_number_id] = {display_phone_number, verified_name, quality_rating};
}

void fake_graph::add_waba(const std::string& waba_id) {
  std::lock_guard lock{impl_->mu};
  impl_->templates[waba_id];
}

void fake_graph::add_template(const std::string& waba_id, nlohmann::json template_object) {
  std::lock_guard lock{impl_->mu};
  auto& list = impl_->templates[waba_id];
  if (!template_object.contains("id")) {
    template_object["id"] = std::to_string(1000000 + list.size());
  }
  list.push_back(std::move(template_object));
}

std::string fake_graph::add_media(const std::string& media_id, const std::string& mime_type,
                                  const std::string& bytes) {
  std::lock_guard lock{impl_->mu};
  auto url = impl_->base_url + "/whatsapp_business/attachments/?mid=" + percent_encode(media_id) +
             "&ext=" + std::to_string(bytes.size()) + "&hash=" + infra::random_hex(8);
  impl_->media[media_id] = {mime_type, bytes, url};
  return url;
}

void fake_graph::script(const std::string& method, const std::string& path_glob,
                        scripted_response response, int times) {
  if (times == 0) {
    return;
  }
  std::lock_guard lock{impl_->mu};
  impl_->rules.push_back({method, path_glob, std::move(response), times});
}

void fake_graph::fail_next(const std::string& path_glob, int times, int http_status, int code,
                           const std::string& message, int subcode, const std::string& details) {
  script({}, path_glob, scripted_response::graph_error(http_status, code, message, subcode, details),
         times);
}

void fake_graph::clear_scripts() {
  std::lock_guard lock{impl_->mu};
  impl_->rules.clear();
}

void fake_graph::close_idle_connections() {
  // Sessions finishing a write become idle a moment later: sweep until none is writing, so
  // that the caller's next request finds every idle connection closed.
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::promise<bool> swept;
    net::post(impl_->ioc, [this, &swept] {
      bool all_done = true;
      for (auto& [id, weak] : impl_->sessions) {
        if (auto s = weak.lock()) {
          all_done = s->close_if_idle() && all_done;
        }
      }
      swept.set_value(all_done);
    });
    if (swept.get_future().get()) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::vector<recorded_call> fake_graph::calls() const {
  std::lock_guard lock{impl_->mu};
  return impl_->calls;
}

std::vector<recorded_call> fake_graph::calls_matching(const std::string& method,
                                                      const std::string& path_glob) const {
  std::lock_guard lock{impl_->mu};
  std::vector<recorded_call> out;
  for (const auto& c : impl_->calls) {
    if ((method.empty() || c.method == method) && glob_match(path_glob, c.path)) {
      out.push_back(c);
    }
  }
  return out;
}

std::size_t fake_graph::call_count() const {
  std::lock_guard lock{impl_->mu};
  return impl_->calls.size();
}

bool fake_graph::wait_for_calls(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock{impl_->mu};
  return impl_->calls_changed.wait_for(lock, timeout, [&] { return impl_->calls.size() >= n; });
}

std::uint64_t fake_graph::connections_accepted() const { return impl_->connections.load(); }

std::vector<nlohmann::json> fake_graph::sent_messages() const {
  std::lock_guard lock{impl_->mu};
  std::vector<nlohmann::json> out;
  for (const auto& c : impl_->calls) {
    if (c.method != "POST" || !c.path.ends_with("/messages") || c.answered_status < 200 ||
        c.answered_status > 299) {
      continue;
    }
    auto body = json::parse(c.body, nullptr, false);
    if (!body.is_discarded() && !body.contains("status")) {
      out.push_back(std::move(body));
    }
  }
  return out;
}

std::vector<nlohmann::json> fake_graph::read_receipts() const {
  std::lock_guard lock{impl_->mu};
  std::vector<nlohmann::json> out;
  for (const auto& c : impl_->calls) {
    if (c.method == "POST" && c.path.ends_with("/messages") && c.answered_status >= 200 && c.answered_status <= 299) {
      auto body = json::parse(c.body, nullptr, false);
      if (!body.is_discarded() && body.contains("status")) {
        out.push_back(std::move(body));
      }
    }
  }
  return out;
}

std::size_t fake_graph::send_calls() const {
  std::lock_guard lock{impl_->mu};
  std::size_t n = 0;
  for (const auto& c : impl_->calls) {
    if (c.method == "POST" && c.path.ends_with("/messages")) {
      auto body = json::parse(c.body, nullptr, false);
      n += body.is_discarded() || !body.contains("status") ? 1 : 0;
    }
  }
  return n;
}

std::size_t fake_graph::max_sends_within(std::chrono::milliseconds window) const {
  std::vector<std::chrono::steady_clock::time_point> at;
  {
    std::lock_guard lock{impl_->mu};
    for (const auto& c : impl_->calls) {
      if (c.method == "POST" && c.path.ends_with("/messages") && c.answered_status >= 200 &&
          c.answered_status <= 299 && c.body.find("\"status\"") == std::string::npos) {
        at.push_back(c.at);
      }
    }
  }
  std::sort(at.begin(), at.end());
  std::size_t best = 0;
  for (std::size_t i = 0, j = 0; j < at.size(); ++j) {
    while (at[j] - at[i] >= window) {
      ++i;
    }
    best = std::max(best, j - i + 1);
  }
  return best;
}

void fake_graph::reset_calls() {
  std::lock_guard lock{impl_->mu};
  impl_->calls.clear();
}

test_certificate make_test_certificate(const std::string& name, const std::filesystem::path& dir) {
  auto fail = [](const char* what) { throw std::runtime_error(std::string{"test cert: "} + what); };
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) {
    fail("key generation");
  }
  X509* cert = X509_new();
  std::uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial >> 1);
  X509_set_version(cert, 2);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, subject);
  beast::error_code ec;
  net::ip::make_address(name, ec);
  bool is_ip = !ec;
  bool ok = true;
  auto san = (is_ip ? "IP:" : "DNS:") + name;
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair<int, std::string>{NID_basic_constraints, "critical,CA:TRUE"},
                            {NID_key_usage, "critical,digitalSignature,keyCertSign"},
                            {NID_ext_key_usage, "serverAuth"},
                            {NID_subject_alt_name, san}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    ok = ok && ext != nullptr && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  ok = ok && X509_sign(cert, key, EVP_sha256()) > 0;
  auto to_pem = [&](bool is_key) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (is_key) {
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    } else {
      PEM_write_bio_X509(bio, cert);
    }
    char* data = nullptr;
    auto len = BIO_get_mem_data(bio, &data);
    std::string out{data, static_cast<std::size_t>(len)};
    BIO_free(bio);
    return out;
  };
  test_certificate out;
  if (ok) {
    out.identity.cert_pem = to_pem(false);
    out.identity.key_pem = to_pem(true);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) {
    fail("building the certificate");
  }
  out.cert_file = dir / (name + ".crt");
  out.key_file = dir / (name + ".key");
  std::ofstream{out.cert_file} << out.identity.cert_pem;
  std::ofstream{out.key_file} << out.identity.key_pem;
  return out;
}

temp_dir::temp_dir() {
  auto pattern = (std::filesystem::temp_directory_path() / "wachat-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = pattern;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace wachat::test
