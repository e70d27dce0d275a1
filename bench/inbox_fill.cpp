// wachat_inbox_fill: puts a backlog of Meta-shaped text-message webhooks straight into
// wa_webhook_events as 'pending' (no HTTP, no wachatd), so that the time wachatd needs to drain
// it measures inbound processing alone. Bodies come from webhook_generator, as the loadgen's do.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <vector>

#include "cli_args.hpp"
#include "infra/crypto.hpp"
#include "webhook_generator.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace wachat;
using bench::cli_args;
using bench::usage_error;

constexpr const char* help_text =
    "Usage: wachat_inbox_fill --db URL --count N [options]\n\n"
    "Inserts N webhook bodies into wa_webhook_events as 'pending' with multi-row INSERTs.\n\n"
    "  --db URL            libpq URI (else $WACHAT_DATABASE_URL)\n"
    "  --count N           bodies to insert, one text message each\n"
    "  --visitors N        distinct senders (body seq comes from visitor seq % N) [10000]\n"
    "  --start-seq S       number of the first body                  [0]\n"
    "  --batch N           rows per INSERT and transaction           [1000]\n"
    "  --body-bytes N      approximate body size                     [1024]\n"
    "  --run-id ID         [A-Za-z0-9_-]{1,64}, in every wamid        [random]\n\n"
    "Prints a human-readable line, then one JSON line.\n";

std::string insert_sql(std::size_t rows) {
  std::string sql = "INSERT INTO wa_webhook_events (body) VALUES ";
  for (std::size_t i = 1; i <= rows; ++i) {
    sql += fmt::format("{}(${})", i == 1 ? "" : ",", i);
  }
  return sql;
}

int run(int argc, char** argv) {
  cli_args args{argc, argv,
                {"db", "count", "visitors", "start-seq", "batch", "body-bytes", "run-id"}};
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
  if (url.empty()) {
    throw usage_error("--db (or WACHAT_DATABASE_URL) is required");
  }
  if (!args.has("count")) {
    throw usage_error("--count is required");
  }
  const auto count = args.number("count", 0, 1, 100000000);
  const auto visitors = args.number("visitors", 10000, 1, 100000000);
  const auto start_seq = args.number("start-seq", 0, 0, 999999999999ULL - count);
  const auto batch = args.number("batch", 1000, 1, 10000);
  const auto body_bytes = args.number("body-bytes", 1024, 0, 4 * 1024 * 1024);
  const auto run_id = args.text("run-id", "fill-" + infra::random_hex(6));
  if (!bench::webhook_generator::valid_run_id(run_id)) {
    throw usage_error("--run-id must be 1-64 characters of [A-Za-z0-9_-]");
  }

  const bench::webhook_generator generator{run_id, body_bytes, visitors};
  pqxx::connection conn{url};
  const auto unix_now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  std::vector<std::string> bodies(batch);
  std::vector<pqxx::binarystring> params;
  params.reserve(batch);
  std::size_t prepared_rows = 0;
  const auto began = clock_type::now();
  for (std::uint64_t done = 0; done < count;) {
    const auto rows = static_cast<std::size_t>(std::min<std::uint64_t>(batch, count - done));
    if (rows != prepared_rows) {
      conn.prepare(fmt::format("fill_{}", rows), insert_sql(rows));
      prepared_rows = rows;
    }
    params.clear();
    for (std::size_t i = 0; i < rows; ++i) {
      generator.render(start_seq + done + i, unix_now, bodies[i]);
      params.emplace_back(bodies[i]);
    }
    pqxx::work tx{conn};
    tx.exec_prepared(fmt::format("fill_{}", rows), pqxx::prepare::make_dynamic_params(params));
    tx.commit();
    done += rows;
  }
  const double took = std::chrono::duration<double>(clock_type::now() - began).count();
  fmt::print("inserted {} pending webhooks from {} visitors in {:.2f} s ({:.0f} rows/s), run {}\n",
             count, std::min(count, visitors), took, static_cast<double>(count) / took, run_id);
  nlohmann::ordered_json report = {{"tool", "wachat_inbox_fill"},
                                   {"run_id", run_id},
                                   {"count", count},
                                   {"visitors", std::min(count, visitors)},
                                   {"start_seq", start_seq},
                                   {"body_bytes", generator.body_size()},
                                   {"seconds", took},
                                   {"rows_per_s", static_cast<double>(count) / took}};
  std::cout << report.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return wachat::bench::run_tool("wachat_inbox_fill", argc, argv, run);
}
