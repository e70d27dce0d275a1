#include "actors/site/site_client.hpp"

#include <caf/all.hpp>

#include "actors/ask.hpp"
#include "actors/site/site_interfaces.hpp"

namespace wachat::actors {
namespace {

// Longer than a Graph call may take (the HTTP layer answers its own timeout first).
constexpr auto answer_within = std::chrono::milliseconds(40000);

template <class Answer>
Answer unanswered(const std::string& why);

template <>
site_answer unanswered<site_answer>(const std::string& why) {
  site_answer a;
  a.what = site_answer::kind::unavailable;
  a.message = "The site's actor did not answer: " + why;
  return a;
}

template <>
conversation_reply unanswered<conversation_reply>(const std::string& why) {
  conversation_reply r;
  r.failed = true;
  r.error = "The conversation's actor did not answer: " + why;
  return r;
}

template <>
send_reply unanswered<send_reply>(const std::string& why) {
  send_reply r;
  r.what = send_reply::kind::unavailable;
  r.error = "The conversation's actor did not answer: " + why;
  return r;
}

template <>
bool unanswered<bool>(const std::string&) {
  return false;
}

template <class Answer, class... Ts>
void ask_directory(caf::actor_system& sys, const site_directory_actor& dir, std::function<void(Answer)> done,
         Ts... xs) {
  actors::ask<Answer>(sys, dir, answer_within, std::move(done), unanswered<Answer>, xs...);
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
  ask_directory(*impl_->sys, impl_->directory, std::move(done), read_atom::value, site);
}

void site_client::change(const std::string& site, infra::site_settings_update update, reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), change_atom::value, site, std::move(update));
}

void site_client::remove(const std::string& site, reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), remove_atom::value, site);
}

void site_client::check(const std::string& site, reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), check_atom::value, site);
}

void site_client::knows_verify_token(const std::string& token, std::function<void(bool)> done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), verify_atom::value, token);
}

void site_client::patch(const std::string& site, const std::string& key, infra::conversation_change change,
                        std::function<void(conversation_reply)> done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), patch_atom::value, site, key, std::move(change));
}

void site_client::test_message(const std::string& site, std::string to, domain::outbound_request request,
                               reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), testmsg_atom::value, site, std::move(to),
                std::move(request));
}

void site_client::templates(const std::string& site, bool refresh, reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), templates_atom::value, site, refresh);
}

void site_client::send(const std::string& caller_site, outbound_send s, std::chrono::milliseconds within,
                       std::function<void(send_reply)> done) {
  actors::ask<send_reply>(*impl_->sys, impl_->directory, within, std::move(done), unanswered<send_reply>,
                          send_atom::value, caller_site, std::move(s));
}

}  // namespace wachat::actors
