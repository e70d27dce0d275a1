// wachat_pg_baseline: the "physical limit" wachat's intake is measured against. N connections,
// each on its own thread, commit multi-row INSERTs of the same Meta-shaped bodies into
// wa_webhook_events as fast as PostgreSQL takes them; no HTTP, no HMAC, no actors.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "cli_args.hpp"
#include "infra/crypto.hpp"
#include "latency_summary.hpp"
#include "webhook_generator.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace wachat;
using bench::cli_args;
using bench::usage_error;
using bench::own_cpu_seconds;
using bench::unix_us_now;

constexpr const char* help_text =
    "Usage: wachat_pg_baseline --db URL [options]\n\n"
    "Commits batches of webhook bodies straight into wa_webhook_events and reports rows/s.\n\n"
    "  --db URL            libpq URI (else $WACHAT_DATABASE_URL)\n"
    "  --connections N     connections, one thread each                [2]\n"
    "  --batch N           rows per INSERT, one INSERT per transaction [100]\n"
    "  --duration S        measured seconds                            [20]\n"
    "  --warmup S          seconds inserted before measuring           [1]\n"
    "  --body-bytes N      approximate body size                       [1024]\n"
    "  --run-id ID         [A-Za-z0-9_-]{1,64}, in every wamid         [random]\n"
    "  --statement S       plain: INSERT (body) VALUES ...; intake: the same statement wachatd\n"
    "                      uses, (body, status, error) ... RETURNING id  [plain]\n"
    "  --autocommit B      1: the INSERT alone, no BEGIN/COMMIT round trips (a single\n"
    "                      statement is atomic anyway); 0: BEGIN; INSERT; COMMIT as wachatd [0]\n\n"
    "Prints human-readable lines, then one JSON line. Exit 1 when a connection fails.\n";

struct run_plan {
  std::string url;
  std::size_t batch = 100;
  bool intake_statement = false;
  bool autocommit = false;
  clock_type::time_point measure_from;
  clock_type::time_point stop_at;
  const bench::webhook_generator* generator = nullptr;
  std::atomic<std::uint64_t>* next_seq = nullptr;
};

struct writer_tally {
  std::uint64_t rows = 0;            // every committed row
  std::uint64_t rows_in_window = 0;  // rows of transactions begun and committed in the window
  std::vector<std::uint32_t> commit_us;
  std::string error;
};

// One multi-row INSERT prepared once, like the intake's. The intake form also binds status and
// error per row and returns the ids, so the two forms show what that costs PostgreSQL.
std::string insert_sql(std::size_t rows, bool intake_statement) {
  if (!intake_statement) {
    std::string sql = "INSERT INTO wa_webhook_events (body) VALUES ";
    for (std::size_t i = 1; i <= rows; ++i) {
      sql += fmt::format("{}(${})", i == 1 ? "" : ",", i);
    }
    return sql;
  }
  std::string sql = "INSERT INTO wa_webhook_events (body, status, error) VALUES ";
  for (std::size_t i = 1; i <= rows; ++i) {
    sql += fmt::format("{}(${}, ${}, ${})", i == 1 ? "" : ",", i, rows + i, 2 * rows + i);
  }
  return sql + " RETURNING id";
}

void write_batches(const run_plan& plan, writer_tally& tally) {
  try {
    pqxx::connection conn{plan.url};
    conn.prepare("baseline_insert", insert_sql(plan.batch, plan.intake_statement));
    std::vector<std::string> bodies(plan.batch);
    std::vector<pqxx::binarystring> params;
    params.reserve(plan.batch);
    const std::vector<std::string> statuses(plan.batch, "pending");
    const std::vector<std::optional<std::string>> errors(plan.batch);
    while (clock_type::now() < plan.stop_at) {
      const auto unix_now = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
      params.clear();
      for (auto& body : bodies) {
        plan.generator->render(plan.next_seq->fetch_add(1, std::memory_order_relaxed), unix_now,
                               body);
        params.emplace_back(body);
      }
      const auto began = clock_type::now();
      auto insert = [&](pqxx::transaction_base& tx) {
        if (plan.intake_statement) {
          tx.exec_prepared("baseline_insert", pqxx::prepare::make_dynamic_params(params),
                           pqxx::prepare::make_dynamic_params(statuses),
                           pqxx::prepare::make_dynamic_params(errors));
        } else {
          tx.exec_prepared("baseline_insert", pqxx::prepare::make_dynamic_params(params));
        }
      };
      if (plan.autocommit) {
        pqxx::nontransaction tx{conn};
        insert(tx);
      } else {
        pqxx::work tx{conn};
        insert(tx);
        tx.commit();
      }
      const auto committed = clock_type::now();
      tally.rows += plan.batch;
      if (began >= plan.measure_from && committed <= plan.stop_at) {
        tally.rows_in_window += plan.batch;
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(committed - began).count();
        tally.commit_us.push_back(static_cast<std::uint32_t>(std::min<long long>(us, UINT32_MAX)));
      }
    }
  } catch (const std::exception& e) {
    tally.error = e.what();
  }
}

// This process's user + system CPU: on 2 shared cores, what the client costs is part of the result.
double round1(double v) {
  return std::round(v * 10.0) / 10.0;
}

int run(int argc, char** argv) {
  cli_args args{argc,
                argv,
                {"db", "connections", "batch", "duration", "warmup", "body-bytes", "run-id",
                 "statement", "autocommit"}};
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
  const auto connections = args.number("connections", 2, 1, 256);
  const auto batch = args.number("batch", 100, 1, 10000);
  const double duration = args.seconds("duration", 20, 0.1, 86400);
  const double warmup = args.seconds("warmup", 1, 0, 3600);
  const auto body_bytes = args.number("body-bytes", 1024, 0, 4 * 1024 * 1024);
  const auto run_id = args.text("run-id", "pg-" + infra::random_hex(6));
  if (!bench::webhook_generator::valid_run_id(run_id)) {
    throw usage_error("--run-id must be 1-64 characters of [A-Za-z0-9_-]");
  }

  const auto statement = args.text("statement", "plain");
  if (statement != "plain" && statement != "intake") {
    throw usage_error("--statement must be plain or intake");
  }
  const bool autocommit = args.number("autocommit", 0, 0, 1) == 1;

  const bench::webhook_generator generator{run_id, body_bytes};
  std::atomic<std::uint64_t> next_seq{0};
  run_plan plan;
  plan.url = url;
  plan.batch = batch;
  plan.intake_statement = statement == "intake";
  plan.autocommit = autocommit;
  plan.generator = &generator;
  plan.next_seq = &next_seq;
  auto to_duration = [](double s) {
    return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
  };
  plan.measure_from = clock_type::now() + to_duration(warmup);
  plan.stop_at = plan.measure_from + to_duration(duration);

  fmt::print(
      "wachat_pg_baseline: run_id={} connections={} batch={} statement={} autocommit={} "
      "warmup={}s duration={}s body_bytes={}\n",
      run_id, connections, batch, statement, autocommit ? 1 : 0, warmup, duration,
      generator.body_size());
  std::fflush(stdout);

  std::vector<writer_tally> tallies(connections);
  std::vector<std::thread> writers;
  for (std::uint64_t i = 0; i < connections; ++i) {
    writers.emplace_back([&plan, &tally = tallies[i]] { write_batches(plan, tally); });
  }
  for (auto& w : writers) {
    w.join();
  }

  std::uint64_t rows = 0;
  std::uint64_t rows_in_window = 0;
  std::vector<std::uint32_t> commit_us;
  std::vector<std::string> errors;
  for (const auto& t : tallies) {
    rows += t.rows;
    rows_in_window += t.rows_in_window;
    commit_us.insert(commit_us.end(), t.commit_us.begin(), t.commit_us.end());
    if (!t.error.empty()) {
      errors.push_back(t.error);
    }
  }
  const double window_s = std::chrono::duration<double>(plan.stop_at - plan.measure_from).count();
  const double rows_per_s = static_cast<double>(rows_in_window) / window_s;
  const auto latency = bench::latency_summary::of(commit_us);

  fmt::print("rows: committed={} in_window={}\n", rows, rows_in_window);
  fmt::print("throughput: {:.1f} rows/s over the {:.1f} s window\n", rows_per_s, window_s);
  fmt::print("batch commit ms: p50={:.3f} p99={:.3f} p99.9={:.3f} max={:.3f} (n={})\n",
             latency.p50_ms, latency.p99_ms, latency.p999_ms, latency.max_ms, latency.count);
  for (const auto& e : errors) {
    fmt::print("error: {}\n", e);
  }

  nlohmann::ordered_json report = {
      {"tool", "wachat_pg_baseline"},
      {"run_id", run_id},
      {"connections", connections},
      {"batch", batch},
      {"statement", statement},
      {"autocommit", autocommit},
      {"warmup_s", warmup},
      {"duration_s", duration},
      {"body_bytes", generator.body_size()},
      {"rows", rows},
      {"rows_in_window", rows_in_window},
      {"rows_per_s", round1(rows_per_s)},
      {"commit_latency_ms", latency.to_json()},
      {"cpu_s", round1(own_cpu_seconds())},
      {"errors", errors},
  };
  std::cout << report.dump() << std::endl;
  return errors.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return wachat::bench::run_tool("wachat_pg_baseline", argc, argv, run);
}
