#pragma once
#include <caf/all.hpp>
#include <chrono>
#include <functional>
#include <string>

// For callers outside the actor system (HTTP threads), which must neither block on an answer
// nor be actors themselves. Include from .cpp files only: it pulls in all of CAF.
namespace wachat::actors {

// Sends `xs...` to `target` as a request from a short-lived actor, which hands the answer to
// `done` — or `failed(error text)` when the target is gone or `within` passed — and ends.
// `done` runs on an actor's thread: it must not block.
template <class Answer, class Handle, class... Ts>
void ask(caf::actor_system& sys, const Handle& target, std::chrono::milliseconds within,
         std::function<void(Answer)> done, std::function<Answer(const std::string&)> failed, Ts... xs) {
  sys.spawn([=](caf::event_based_actor* self) {
    self->request(target, within, xs...)
        .then([=](Answer& a) { done(std::move(a)); },
              [=](caf::error& e) { done(failed(to_string(e))); });
  });
}

}  // namespace wachat::actors
