#pragma once
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace wachat::http {

// One io_context per HTTP thread, each run by that thread alone. A connection lives on one of
// them for good, so its handlers never run concurrently without a strand, and its stream uses
// the io_context's own executor instead of the type-erased any_io_executor: the strand and the
// executor's type erasure (shared_ptr copies, prefer() dispatch) were about a tenth of wachatd's
// samples under webhook load (bench/RESULTS.md, set 13). Each io_context is told it has one
// thread (concurrency hint 1). Posting to one from any thread stays safe. What a handler does on
// its thread holds up that thread's connections only: the API runs on the gateway's workers, a
// file reply reads its 64 KiB chunks here (pread, from the page cache as a rule).
class io_pool {
 public:
  explicit io_pool(std::size_t threads) {
    for (std::size_t i = 0; i < (threads == 0 ? 1 : threads); ++i) {
      contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
      guards_.emplace_back(boost::asio::make_work_guard(*contexts_.back()));
    }
  }
  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;
  ~io_pool() {
    stop();
    join();
  }

  // The first io_context: the acceptor, signals and timers of the process live there.
  boost::asio::io_context& main() { return *contexts_.front(); }
  // The io_context for the next connection, in turn.
  boost::asio::io_context& next() { return *contexts_[next_++ % contexts_.size()]; }

  void run() {
    for (auto& c : contexts_) {
      threads_.emplace_back([ctx = c.get()] { ctx->run(); });
    }
  }
  void stop() {
    guards_.clear();
    for (auto& c : contexts_) {
      c->stop();
    }
  }
  void join() {
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
    threads_.clear();
  }

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::size_t next_ = 0;  // only the acceptor's handler (on main()) takes from it
};

}  // namespace wachat::http
