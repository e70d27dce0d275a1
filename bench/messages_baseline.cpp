// wachat_pg_messages: the "bare PostgreSQL" figure that inbound processing is compared with.
// It writes the rows that processing N text messages from V visitors leaves behind (V visitors,
// V open conversations, N messages) with multi-row INSERTs of `batch` rows, one transaction
// each, on one connection: no webhook bodies, no parsing, no actors, no per-row statements.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>
#include <unordered_map>
#include <vector>

#include "cli_args.hpp"
#include "infra/crypto.hpp"
#include "webhook_generator.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace wachat;
using bench::cli_args;
using bench::usage_error;
using bench::own_cpu_seconds;
using bench::unix_us_now;

constexpr const char* help_text =
    "Usage: wachat_pg_messages --db URL --site SITE --count N [options]\n\n"
    "Inserts V visitors, V conversations and N text messages of SITE with multi-row INSERTs\n"
    "and reports messages/s (all three kinds of rows timed together) and rows/s.\n\n"
    "  --db URL            libpq URI (else $WACHAT_DATABASE_URL)\n"
    "  --site SITE         an existing site id\n"
    "  --count N           messages\n"
    "  --visitors V        distinct senders, message seq from visitor seq % V [10000]\n"
    "  --batch N           rows per INSERT and transaction           [1000]\n"
    "  --body-bytes N      webhook size whose text the messages carry [1024]\n"
    "  --run-id ID         [A-Za-z0-9_-]{1,64}, in every wamid        [random]\n\n"
    "Prints human-readable lines, then one JSON line.\n";

// "INSERT ... VALUES (...), (...)" for `rows` rows shaped like `row_shape`, whose '?' cells are
// parameters, column-major: $1 is the site, then $2.. the first '?' column of every row, etc.
std::string values_sql(const std::string& head, const std::vector<std::string>& row_shape,
                       std::size_t rows, const std::string& tail) {
  std::string sql = head + " VALUES ";
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r == 0 ? "(" : ",(";
    std::size_t param_col = 0;  // which of the '?' columns this is
    for (std::size_t c = 0; c < row_shape.size(); ++c) {
      std::string cell = row_shape[c];
      auto at = cell.find('?');
      if (at != std::string::npos) {
        cell.replace(at, 1, fmt::format("${}", 2 + param_col++ * rows + r));
      }
      sql += (c == 0 ? "" : ",") + cell;
    }
    sql += ")";
  }
  return sql + tail;
}

// One multi-row INSERT per chunk of `batch` rows, each committed; cols[c][i] is column c of
// row i. Returns the first two returned columns of every row when `returning` is set.
std::vector<std::pair<std::string, std::string>> insert_rows(
    pqxx::connection& conn, const std::string& site, const std::string& head,
    const std::vector<std::string>& row_shape, const std::string& tail,
    const std::vector<std::vector<std::string>>& cols, std::size_t batch) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto total = cols.front().size();
  for (std::size_t from = 0; from < total; from += batch) {
    const auto rows = std::min(batch, total - from);
    std::vector<std::string> params{site};
    for (const auto& col : cols) {
      params.insert(params.end(), col.begin() + static_cast<std::ptrdiff_t>(from),
                    col.begin() + static_cast<std::ptrdiff_t>(from + rows));
    }
    pqxx::work tx{conn};
    auto r = tx.exec_params(values_sql(head, row_shape, rows, tail),
                            pqxx::prepare::make_dynamic_params(params));
    tx.commit();
    if (!tail.empty()) {
      for (const auto& row : r) {
        out.emplace_back(row[0].c_str(), row[1].c_str());
      }
    }
  }
  return out;
}

int run(int argc, char** argv) {
  cli_args args{argc, argv, {"db", "site", "count", "visitors", "batch", "body-bytes", "run-id"}};
  if (args.help()) {
    std::cout << help_text;
    return 0;
  }
  std::string url = args.text("db", "");
  if (url.empty()) {
    if (const char* env = std::getenv("WACHAT_DATABASE_URL"); env != nullptr) {
      url = env;
    }
  }
  const auto site = args.text("site", "");
  if (url.empty() || site.empty() || !args.has("count")) {
    throw usage_error("--db, --site and --count are required");
  }
  const auto count = args.number("count", 0, 1, 100000000);
  const auto visitors = std::min(args.number("visitors", 10000, 1, 100000000), count);
  const auto batch = args.number("batch", 1000, 1, 5000);
  const auto body_bytes = args.number("body-bytes", 1024, 0, 4 * 1024 * 1024);
  const auto run_id = args.text("run-id", "msgs-" + infra::random_hex(6));
  if (!bench::webhook_generator::valid_run_id(run_id)) {
    throw usage_error("--run-id must be 1-64 characters of [A-Za-z0-9_-]");
  }
  const bench::webhook_generator generator{run_id, body_bytes, visitors};
  const auto unix_now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  // The same text the webhooks carry.
  std::string body;
  generator.render(0, unix_now, body);
  const std::string text = nlohmann::json::parse(
      body)["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"];

  // Everything generated before the clock starts: only PostgreSQL's work is timed.
  std::vector<std::vector<std::string>> visitor_cols(3);
  for (std::uint64_t v = 0; v < visitors; ++v) {
    visitor_cols[0].push_back(fmt::format("Cliente {}", v));
    visitor_cols[1].push_back(generator.wa_id(v));
    visitor_cols[2].push_back("+" + generator.wa_id(v));
  }
  const std::string ts = std::to_string(unix_now);

  pqxx::connection conn{url};
  const double cpu0 = own_cpu_seconds();
  const auto t0 = clock_type::now();
  auto visitor_ids = insert_rows(
      conn, site, "INSERT INTO mod_chat_visitors (site_id, name, whatsapp_phone, phone)",
      {"$1", "?::text", "?::text", "?::text"}, " RETURNING id, whatsapp_phone", visitor_cols, batch);
  const auto t1 = clock_type::now();
  std::vector<std::vector<std::string>> conv_cols(1);
  for (const auto& [id, phone] : visitor_ids) {
    conv_cols[0].push_back(id);
  }
  auto conv_ids = insert_rows(conn, site,
                              "INSERT INTO mod_chat_conversations (site_id, visitor_id, channel,"
                              " status, last_message_at, whatsapp_window_expires_at)",
                              {"$1", "?::bigint", "'whatsapp'", "'pending'", "now()",
                               "now() + interval '24 hours'"},
                              " RETURNING id, visitor_id", conv_cols, batch);
  const auto t2 = clock_type::now();
  std::unordered_map<std::string, std::string> conv_of_visitor;  // visitor id -> conversation
  for (const auto& [conv, visitor] : conv_ids) {
    conv_of_visitor[visitor] = conv;
  }
  std::unordered_map<std::string, std::string> visitor_of_phone;
  for (const auto& [id, phone] : visitor_ids) {
    visitor_of_phone[phone] = id;
  }
  std::vector<std::vector<std::string>> msg_cols(5);
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    const auto phone = generator.wa_id(seq);
    msg_cols[0].push_back(conv_of_visitor.at(visitor_of_phone.at(phone)));
    msg_cols[1].push_back(phone);
    msg_cols[2].push_back(fmt::format("Cliente {:012}", seq));
    msg_cols[3].push_back(text);
    msg_cols[4].push_back(fmt::format("wamid.{}.{:012}", run_id, seq));
  }
  const auto t3 = clock_type::now();  // building the message columns is not PostgreSQL's time
  insert_rows(conn, site,
              "INSERT INTO mod_chat_messages (conversation_id, site_id, sender_type, sender_id,"
              " sender_name, content, content_type, media_status, whatsapp_message_id, status,"
              " whatsapp_timestamp, created_at)",
              {"?::bigint", "$1", "'visitor'", "?::text", "?::text", "?::text", "'text'", "'none'",
               "?::text",
               "'received'", "to_timestamp(" + ts + ")", "to_timestamp(" + ts + ")"},
              "", msg_cols, batch);
  const auto t4 = clock_type::now();
  const double cpu = own_cpu_seconds() - cpu0;

  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  const double visitors_s = secs(t0, t1);
  const double conversations_s = secs(t1, t2);
  const double messages_s = secs(t3, t4);
  const double total_s = visitors_s + conversations_s + messages_s;
  const auto rows = 2 * visitors + count;
  fmt::print("visitors {} in {:.2f} s, conversations {} in {:.2f} s, messages {} in {:.2f} s\n",
             visitors, visitors_s, visitors, conversations_s, count, messages_s);
  fmt::print("bare PostgreSQL: {:.0f} messages/s ({} rows in {:.2f} s, {:.0f} rows/s); "
             "messages alone {:.0f}/s\n",
             count / total_s, rows, total_s, rows / total_s, count / messages_s);
  nlohmann::ordered_json report = {
      {"tool", "wachat_pg_messages"}, {"run_id", run_id},
      {"count", count},               {"visitors", visitors},
      {"batch", batch},               {"visitors_s", visitors_s},
      {"conversations_s", conversations_s},
      {"messages_s", messages_s},     {"total_s", total_s},
      {"messages_per_s", count / total_s},
      {"rows_per_s", rows / total_s}, {"messages_only_per_s", count / messages_s},
      {"client_cpu_s", cpu}};
  std::cout << report.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return wachat::bench::run_tool("wachat_pg_messages", argc, argv, run);
}
