#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace wachat::test {

namespace detail {
struct fake_graph_core;
}

// One request the fake received, as it arrived.
struct recorded_call {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string query;   // raw, without '?'
  std::vector<std::pair<std::string, std::string>> params;  // the query, decoded
  std::map<std::string, std::string> headers;               // lower-case names
  std::string body;
  std::uint64_t connection = 0;  // 1 for the first connection accepted, 2 for the next, ...
  int answered_status = 0;       // what the fake answered; 0 when it closed without answering
  std::chrono::steady_clock::time_point at;  // when its request was read

  std::optional<std::string> param(const std::string& key) const;
};

// A file uploaded with POST /{phone_number_id}/media, as the fake read it.
struct uploaded_media {
  std::string id;  // what the fake answered
  std::string phone_number_id;
  std::string messaging_product;
  std::string type;  // the form's `type` field
  std::string filename;
  std::string content_type;  // the file part's
  std::string bytes;
};

// What a scripted request gets instead of (or before) the normal answer.
struct scripted_response {
  enum class action { reply, pass_through, close_connection };
  action what = action::reply;
  std::chrono::milliseconds delay{0};  // wait this long first
  int status = 200;
  std::string body;
  std::string content_type = "application/json";

  // Meta's error shape: {"error":{"message","type","code","error_subcode"?,"error_data":{...},"fbtrace_id"}}.
  static scripted_response graph_error(int http_status, int code, std::string message,
                                       int subcode = 0, std::string details = {},
                                       std::string type = "OAuthException");
  static scripted_response json(int http_status, std::string body);
  // The normal answer, `delay` late.
  static scripted_response delayed(std::chrono::milliseconds delay);
  // Reads the request, then closes the connection without answering.
  static scripted_response close_connection();
};

// A certificate and key for TLS tests.
struct tls_identity {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed certificate for `name` (a DNS name, or an IP address) that is also its own CA,
// with its PEM written to `dir`/<name>.crt and `dir`/<name>.key.
struct test_certificate {
  tls_identity identity;
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
};
test_certificate make_test_certificate(const std::string& name, const std::filesystem::path& dir);

// A fresh empty directory under the system temp dir, removed by the destructor.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A fake Graph API over real sockets on 127.0.0.1 (random port), answering as META.md documents:
//   GET  /{version}/{phone_number_id}?fields=...        phone fields
//   POST /{version}/{phone_number_id}/messages           send (wamid) or mark read ({"success":true})
//   GET  /{version}/{waba_id}/message_templates          paged, paging.next is an absolute URL here
//   GET  /{version}/{media_id}                           {url, mime_type, sha256, file_size, id}
//   GET  /whatsapp_business/attachments/?mid=...         the media bytes (bearer token required)
//   POST /{version}/{phone_number_id}/media              multipart upload: {"id"}
// A bad or missing bearer token answers 401 with error code 190. Unknown ids answer 400 with
// code 100, subcode 33, as Meta does. Every call is recorded; scripts make calls fail on demand.
// Thread-safe: tests call it from their own thread while it serves on its own.
class fake_graph {
 public:
  struct options {
    std::string version = "v24.0";
    std::set<std::string> valid_tokens = {"test-token"};
    std::optional<tls_identity> tls;        // serve HTTPS with this identity
    std::string public_host = "127.0.0.1";  // host in base_url() and in the links it hands out
    // Serve at a lower CPU priority: in a benchmark, Meta's side of the work is not the machine's.
    bool background = false;
  };

  fake_graph();
  explicit fake_graph(options opts);
  ~fake_graph();
  fake_graph(const fake_graph&) = delete;
  fake_graph& operator=(const fake_graph&) = delete;

  std::uint16_t port() const;
  // `http://127.0.0.1:<port>` (or https://<public_host>:<port>): WACHAT_GRAPH_BASE_URL.
  std::string base_url() const;
  const std::string& version() const;

  // What Meta knows.
  void add_token(const std::string& token);
  void remove_token(const std::string& token);
  void add_phone(const std::string& phone_number_id, const std::string& display_phone_number,
                 const std::string& verified_name, const std::string& quality_rating = "GREEN");
  // Registers the WABA (so an empty list is not "unknown id") and appends a template. A template
  // without "id" gets one.
  void add_waba(const std::string& waba_id);
  void add_template(const std::string& waba_id, nlohmann::json template_object);
  // Returns the download URL that GET /{version}/{media_id} hands out.
  std::string add_media(const std::string& media_id, const std::string& mime_type,
                        const std::string& bytes);

  // The next `times` requests (times < 0: all, until cleared) whose method equals `method`
  // (empty: any) and whose path matches `path_glob` ('*' matches any run of characters, '/'
  // included, e.g. "*/messages") get `response`. Scripts are tried in the order added.
  void script(const std::string& method, const std::string& path_glob, scripted_response response,
              int times = 1);
  // The next `times` calls to `path_glob` answer Meta's error object with `code`.
  void fail_next(const std::string& path_glob, int times, int http_status, int code,
                 const std::string& message = "Scripted failure", int subcode = 0,
                 const std::string& details = {});
  void clear_scripts();
  // Closes every connection that is waiting for its next request (a server's keep-alive timeout).
  void close_idle_connections();

  // What it saw.
  std::vector<recorded_call> calls() const;
  std::vector<recorded_call> calls_matching(const std::string& method,
                                            const std::string& path_glob) const;
  std::size_t call_count() const;
  // True once at least `n` calls have been recorded; false if `timeout` passes first.
  bool wait_for_calls(std::size_t n, std::chrono::milliseconds timeout) const;
  std::uint64_t connections_accepted() const;
  // Bodies of the message sends (not mark-read calls) it answered with 2xx, in order.
  std::vector<nlohmann::json> sent_messages() const;
  // Bodies of the mark-read calls it answered with 2xx, in order.
  std::vector<nlohmann::json> read_receipts() const;
  // Files uploaded with POST /{phone_number_id}/media, in order.
  std::vector<uploaded_media> uploads() const;
  // Message sends it received (not mark-read calls), whatever it answered.
  std::size_t send_calls() const;
  // The most message sends (2xx, not mark-read) whose requests arrived within any `window`.
  std::size_t max_sends_within(std::chrono::milliseconds window) const;
  void reset_calls();

 private:
  std::unique_ptr<detail::fake_graph_core> impl_;
};

}  // namespace wachat::test
