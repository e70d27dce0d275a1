#include "actors/site/site_client.hpp"

#include <caf/all.hpp>

#include "actors/site/site_interfaces.hpp"

namespace wachat::actors {
namespace {

// Longer than a Graph call may take (the HTTP layer answers its own timeout first).
constexpr auto answer_within = std::chrono::seconds(40);

// A short-lived actor makes the request and hands the answer to `done`: the caller is not an
// actor, and blocking on the answer would hold an HTTP thread.
template <class... Ts>
void ask(caf::actor_system& sys, const site_directory_actor& dir, site_client::reply done, Ts... xs) {
  sys.spawn([=](caf::event_based_actor* self) {
    self->request(dir, answer_within, xs...)
        .then([=](site_answer& a) { done(std::move(a)); },
              [=](caf::error& e) {
                site_answer a;
                a.what = site_answer::kind::unavailable;
                a.message = "The site's actor did not answer: " + to_string(e);
                done(std::move(a));
              });
  });
}

}  // namespace

struct site_client::impl {
  caf::actor_system* sys = nullptr;
  site_directory_actor directory;
};

site_client::site_client(caf::actor_system& sys, const caf::actor& directory)
    : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  impl_->directory = caf::actor_cast<site_directory_actor>(directory);
}

site_client::~site_client() = default;

void site_client::read(const std::string& site, reply done) {
  ask(*impl_->sys, impl_->directory, std::move(done), read_atom::value, site);
}

void site_client::change(const std::string& site, infra::site_settings_update update, reply done) {
  ask(*impl_->sys, impl_->directory, std::move(done), change_atom::value, site, std::move(update));
}

void site_client::remove(const std::string& site, reply done) {
  ask(*impl_->sys, impl_->directory, std::move(done), remove_atom::value, site);
}

void site_client::check(const std::string& site, reply done) {
  ask(*impl_->sys, impl_->directory, std::move(done), check_atom::value, site);
}

}  // namespace wachat::actors
