// wachatd: the wachat server. Reads its configuration, migrates the schema, serves HTTP.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <caf/all.hpp>
#include <fmt/format.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <pqxx/pqxx>
#include <sstream>
#include <filesystem>
#include <thread>
#include <unistd.h>

#include "actors/api/api_gateway.hpp"
#include "actors/outbound/cloud_sender.hpp"
#include "actors/db/db_probe.hpp"
#include "actors/events/event_hub.hpp"
#include "actors/inbound/inbox_dispatcher.hpp"
#include "actors/inbound/inbound_writer.hpp"
#include "actors/inbound/intake.hpp"
#include "actors/followups/followups.hpp"
#include "actors/media/media_workers.hpp"
#include "actors/site/conversation_writer.hpp"
#include "actors/site/site_client.hpp"
#include "actors/site/site_directory.hpp"
#include "actors/supervision/stop_and_wait.hpp"
#include "http/api_common.hpp"
#include "http/console_handler.hpp"
#include "http/conversations_handler.hpp"
#include "http/messages_handler.hpp"
#include "http/events_handler.hpp"
#include "http/crm_handler.hpp"
#include "http/media_handler.hpp"
#include "http/uploads_handler.hpp"
#include "http/usage_handler.hpp"
#include "infra/graph_client.hpp"
#include "http/ops_handler.hpp"
#include "http/sites_handler.hpp"
#include "http/server.hpp"
#include "http/webhook_handler.hpp"
#include "http/webhook_waiters.hpp"
#include "http/whatsapp_settings_handler.hpp"
#include "infra/config.hpp"
#include "infra/blob_store.hpp"
#include "infra/log.hpp"
#include "infra/media_urls.hpp"
#include "infra/migrations.hpp"

namespace {

using namespace wachat;

[[noreturn]] void die(const std::string& line) {
  std::fprintf(stderr, "wachatd: %s\n", line.c_str());
  std::exit(2);
}

infra::config load(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    std::string_view a{argv[i]};
    if (a == "--help" || a == "-h") {
      std::cout << infra::help_text();
      std::exit(0);
    } else if (a == "--version") {
      std::cout << "wachatd 0.1.0\n";
      std::exit(0);
    } else if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.starts_with("--config=")) {
      config_path = std::string{a.substr(9)};
    } else {
      die("unknown option '" + std::string{a} + "' (see --help)");
    }
  }
  infra::settings_map file_settings;
  if (!config_path.empty()) {
    std::ifstream in{config_path};
    if (!in) {
      die("cannot read config file " + config_path);
    }
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = infra::parse_config_file(text.str());
    if (auto* err = std::get_if<std::string>(&parsed)) {
      die(config_path + ": " + *err);
    }
    file_settings = std::get<infra::settings_map>(parsed);
  }
  auto built = infra::build_config(file_settings, infra::read_environment());
  if (auto* err = std::get_if<std::string>(&built)) {
    die(*err);
  }
  return std::get<infra::config>(built);
}

// The database may still be starting (embedded PostgreSQL, a container): retry for a while.
void migrate_with_retry(const std::string& url) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (true) {
    try {
      infra::apply_migrations(url);
      return;
    } catch (const pqxx::broken_connection& e) {
      if (std::chrono::steady_clock::now() > deadline) {
        die(std::string{"cannot connect to WACHAT_DATABASE_URL: "} + e.what());
      }
    } catch (const std::exception& e) {
      std::string msg = e.what();
      if (msg.find("connect") == std::string::npos ||
          std::chrono::steady_clock::now() > deadline) {
        die(msg);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

// The media directory, made if missing and checked writable now rather than at the first
// customer's photo.
std::shared_ptr<infra::blob_store> open_media_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || ::access(dir.c_str(), W_OK | X_OK) != 0) {
    die("WACHAT_MEDIA_DIR " + dir + " is not a writable directory" + (ec ? ": " + ec.message() : ""));
  }
  return infra::make_filesystem_blob_store(dir);
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) must fail the write that crosses it, as a full disk does,
  // not kill the server.
  std::signal(SIGXFSZ, SIG_IGN);
  auto cfg = load(argc, argv);
  // Fail fast on an unreachable server instead of hanging in connect().
  ::setenv("PGCONNECT_TIMEOUT", "3", 0);
  migrate_with_retry(cfg.database_url);

  caf::actor_system_config caf_cfg;
  caf_cfg.set("scheduler.max-threads", 2);
  // Work sharing: idle workers wait on a condition variable. Work stealing polls with short
  // sleeps when idle, which cost about 8% of wachatd's CPU under a steady webhook load
  // (bench/RESULTS.md); the heavy actors are detached anyway, so stealing buys nothing here.
  caf_cfg.set("scheduler.policy", caf::atom("sharing"));
  caf_cfg.set("logger.verbosity", caf::atom("quiet"));
  // Made before the actor system, so destroyed after it: ~actor_system waits for actors that
  // may still count something (a pool finishing its stop).
  auto metrics = std::make_shared<infra::metrics>();
  caf::actor_system sys{caf_cfg};

  auto graph_or_error = infra::graph_client::create(infra::graph_client_options::from_config(cfg));
  if (auto* why = std::get_if<std::string>(&graph_or_error)) {
    die("graph API client: " + *why);
  }
  // Shared: an upload helper may hold it past the senders' stop (graph->stop() ends its call).
  std::shared_ptr<infra::graph_client> graph = std::move(std::get<std::unique_ptr<infra::graph_client>>(graph_or_error));

  // Media downloads get a client of their own: a slow 100 MB document never queues behind, or
  // ahead of, an agent's send.
  auto media_graph_options = infra::graph_client_options::from_config(cfg);
  media_graph_options.background = true;
  auto media_graph_or_error = infra::graph_client::create(media_graph_options);
  if (auto* why = std::get_if<std::string>(&media_graph_or_error)) {
    die("graph API client: " + *why);
  }
  std::shared_ptr<infra::graph_client> media_graph =
      std::move(std::get<std::unique_ptr<infra::graph_client>>(media_graph_or_error));
  std::shared_ptr<infra::blob_store> blobs = open_media_dir(cfg.media_dir);
  actors::media_settings media_cfg;
  media_cfg.database_url = cfg.database_url;
  media_cfg.cfg = &cfg;
  media_cfg.graph = media_graph;
  media_cfg.blobs = blobs;
  media_cfg.workers = cfg.media_workers;
  media_cfg.retry_base = std::chrono::milliseconds(cfg.media_retry_ms);
  media_cfg.stall = std::chrono::milliseconds(cfg.media_stall_ms);
  // Customers' messages stored by this process (the dispatcher's counter for /metrics); statuses
  // do not count, or a site that sends a lot would never let its media through.
  media_cfg.inbound_activity = [stored = &metrics->get_counter("wachat_inbound_messages_total", "New inbound messages stored.")] {
    return stored->load(std::memory_order_relaxed);
  };
  media_cfg.yield_max = std::chrono::milliseconds(cfg.media_yield_ms);
  auto media = actors::spawn_media_workers(sys, std::move(media_cfg), metrics);
  actors::followup_settings crm_cfg;
  crm_cfg.database_url = cfg.database_url;
  crm_cfg.cfg = &cfg;
  crm_cfg.retry_base = std::chrono::milliseconds(cfg.crm_retry_ms);
  auto crm = actors::spawn_followups(sys, std::move(crm_cfg), metrics);

  // The inbound path: writer pool <- conversation actors <- site actors <- directory <- dispatcher.
  auto writer = actors::spawn_inbound_writer_pool(sys, cfg.database_url, cfg.inbound_writers, metrics);
  // The dashboard's writes to conversations are few: two workers keep one slow write from
  // holding up the others.
  auto changes = actors::spawn_conversation_writer(sys, cfg.database_url, 2, metrics);
  // Agents' sends: each worker gathers what arrives while it waits on its connection and writes
  // it in one statement per step, so fewer workers make larger batches (bench/RESULTS.md: one
  // sent 1.1 × what two did and 1.25 × what four did, with 15 % less CPU per send than two). An
  // upload of an agent's file to Meta runs on a helper's thread, not the worker's.
  auto senders = actors::spawn_cloud_senders(sys, cfg.database_url, 1, graph, blobs,
                                              std::chrono::milliseconds(cfg.send_doubt_ms), metrics);
  actors::site_directory_settings dir_settings;
  dir_settings.database_url = cfg.database_url;
  dir_settings.cfg = &cfg;
  dir_settings.graph = graph.get();
  dir_settings.conversations.writer = writer;
  dir_settings.conversations.changes = changes;
  dir_settings.conversations.sender = senders;
  dir_settings.conversations.idle = std::chrono::milliseconds(cfg.conversation_idle_ms);
  dir_settings.conversations.send_wait = std::chrono::milliseconds(cfg.send_wait_ms);
  dir_settings.conversations.send_doubt = std::chrono::milliseconds(cfg.send_doubt_ms);
  auto directory = actors::spawn_site_directory(sys, std::move(dir_settings), metrics);
  actors::site_client sites{sys, caf::actor_cast<caf::actor>(directory)};
  actors::inbox_dispatcher dispatcher{
      sys,
      actors::inbox_dispatcher_settings{cfg.database_url, std::chrono::milliseconds(cfg.inbox_lease_ms)},
      metrics, directory};
  // Webhooks wait for their commit here; intake settles them (no callback travels with a body).
  auto waiters = std::make_shared<http::webhook_waiters>(std::chrono::milliseconds(cfg.commit_timeout_ms));
  actors::intake_settings intake_cfg;
  intake_cfg.database_url = cfg.database_url;
  intake_cfg.writers = cfg.intake_writers;
  intake_cfg.batch_max = cfg.intake_batch_max;
  intake_cfg.metrics = metrics;
  intake_cfg.listener = waiters;
  intake_cfg.wake = dispatcher.handle();
  intake_cfg.owner_key = dispatcher.owner_key();
  actors::intake intake{sys, std::move(intake_cfg)};
  actors::db_probe probe{sys, cfg.database_url};

  // Dashboard calls: the routes fill the operation table, the gateway's workers run them.
  auto calls = std::make_shared<http::api_calls>(cfg.admin_token);
  actors::api_gateway gateway{sys, cfg.database_url, 4, calls, metrics};
  calls->connect(&gateway);
  http::router routes;
  http::webhook_settings wh;
  wh.app_secret = cfg.app_secret;
  wh.verify_token = cfg.verify_token;
  wh.max_bytes = cfg.webhook_max_bytes;
  // Site verify tokens are the site directory's to know (off the HTTP threads).
  wh.site_verify_token_lookup = [&sites](std::string token, std::function<void(bool)> done) {
    sites.knows_verify_token(token, std::move(done));
  };
  http::add_webhook_routes(routes, wh, intake, waiters, metrics);
  http::add_ops_routes(routes, probe, metrics);
  http::api_context api;
  api.cfg = &cfg;
  api.calls = calls;
  api.sites = &sites;
  api.metrics = metrics;
  api.wake_dispatcher = [&dispatcher] { dispatcher.wake_routing(); };
  http::add_site_routes(routes, api);
  http::add_whatsapp_settings_routes(routes, api);
  http::add_conversation_routes(routes, api);
  http::add_usage_routes(routes, api);
  http::add_crm_routes(routes, api);
  http::add_upload_routes(routes, api, blobs);
  http::add_message_routes(routes, api);
  actors::event_hub events{sys, cfg.database_url, metrics};
  api.events = &events;
  http::add_event_routes(routes, api);
  http::add_media_routes(routes, api, blobs, [media] { caf::anon_send(media, actors::wake_atom::value); });
  http::add_console_routes(routes, cfg.public_url);

  auto shared = std::make_shared<http::server_shared>();
  shared->routes = &routes;
  shared->metrics = metrics;
  shared->limits.request_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  shared->limits.default_body_limit = cfg.api_max_body_bytes;

  http::io_pool pool{cfg.http_threads};
  auto& ioc = pool.main();
  std::unique_ptr<http::server> srv;
  try {
    srv = std::make_unique<http::server>(pool, cfg.listen_host, cfg.listen_port, shared);
  } catch (const std::exception& e) {
    die(e.what());
  }
  // The port is known now (also when 0 asked for any): media links are signed with the public
  // URL before the first request can read a message.
  auto listen = fmt::format("{}:{}", cfg.listen_host, srv->port());
  auto public_url = cfg.public_url;
  if (cfg.listen_port == 0 && public_url.ends_with(":0")) {
    public_url = fmt::format("http://{}", listen);
  }
  bool random_media_key = false;
  auto media_secret = infra::media_signing_secret(cfg, &random_media_key);
  infra::install_media_url_signer(
      std::make_shared<infra::media_url_signer>(media_secret, public_url, cfg.media_url_ttl));
  if (random_media_key) {
    infra::log_warn("media_urls_process_local",
                    {{"why", "neither WACHAT_MASTER_KEY nor WHATSAPP_APP_SECRET is set: media links signed by "
                             "this process hold only until it stops, and only here"}});
  }
  srv->start();
  waiters->start_expiry(ioc);
  std::promise<int> stop_signal;
  boost::asio::signal_set signals{ioc, SIGINT, SIGTERM};
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (!ec) {
      stop_signal.set_value(sig);
    }
  });
  pool.run();
  // On any way out of this scope the HTTP threads stop before the server, the signal set and the
  // handlers they run are destroyed (on the orderly way they have stopped already).
  struct pool_stopper {
    http::io_pool& pool;
    ~pool_stopper() {
      pool.stop();
      pool.join();
    }
  } stopper{pool};
  const auto webhook_url = public_url + http::webhook_path;
  infra::log_info("listening", {{"address", listen}, {"webhook_url", webhook_url}});

  int sig = stop_signal.get_future().get();
  infra::log_info("shutting_down", {{"signal", std::to_string(sig)}});
  // Stop taking connections, let requests in flight finish (their commits included), then stop.
  srv->stop_accepting();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  while (srv->in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  intake.shutdown();
  dispatcher.shutdown();
  // Sites stop their conversations; the writers then store what is queued.
  for (auto handle : {caf::actor_cast<caf::actor>(directory), caf::actor_cast<caf::actor>(writer),
                      caf::actor_cast<caf::actor>(changes), caf::actor_cast<caf::actor>(senders)}) {
    actors::stop_and_wait(sys, handle);
  }
  // Media workers finish their step; a download still running is cut short (its job waits).
  auto media_handle = caf::actor_cast<caf::actor>(media);
  actors::stop_and_wait(sys, media_handle);
  auto crm_handle = caf::actor_cast<caf::actor>(crm);
  actors::stop_and_wait(sys, crm_handle);
  media_graph->stop();
  media_graph.reset();
  gateway.shutdown();
  events.stop();
  graph->stop();
  graph.reset();
  pool.stop();
  pool.join();
  infra::log_info("stopped", {{"unfinished_requests", std::to_string(srv->in_flight())}});
  return 0;
}
