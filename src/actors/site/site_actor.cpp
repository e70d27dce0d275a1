#include "actors/site/site_actor.hpp"

#include <caf/all.hpp>

#include "actors/site/template_cache.hpp"
#include "domain/send_pacing.hpp"
#include "infra/chat_views.hpp"
#include <unordered_map>

#include "actors/site/conversation_actor.hpp"
#include "infra/graph_client.hpp"
#include "infra/graph_phone.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

struct live_conversation {
  conversation_actor actor;
  std::uint64_t forwarded = 0;  // units handed to it so far
};

// A dashboard request waiting for Graph's answer.
struct graph_wait {
  caf::typed_response_promise<site_answer> answer;
  std::optional<infra::site_settings_update> update;  // a PUT; none: a test of the credentials
  bool test_message = false;                          // POST .../test-message: Meta's wamid
};

struct site_state {
  site_actor_settings settings;
  std::unordered_map<std::string, live_conversation> conversations;
  std::unordered_map<std::uint64_t, graph_wait> graph_waits;
  std::uint64_t next_call = 0;
  domain::send_pacer pacer;  // the number's send rate, shared by all its conversations
  template_cache templates;
  std::shared_ptr<const read_receipt_target> receipt;  // see receipt_target()
  std::shared_ptr<const unit_context> context;         // see unit_context_of(); reset on refresh
  static inline const char* name = "site";
};

using self_ptr = site_actor::stateful_pointer<site_state>;

const infra::site_settings& current(self_ptr self) { return self->state.settings.settings; }

// Graph could not give what was asked: its error, or why it could not be asked.
site_answer failure_graph(const domain::graph_error& e) {
  site_answer a;
  if (e.code == 0 && e.http_status == 0 && !e.transport) {
    a.what = site_answer::kind::invalid;  // not asked: the site lacks a WABA id or token
    a.message = e.title;
    return a;
  }
  a.what = e.transport ? site_answer::kind::graph_unreachable : site_answer::kind::graph_refused;
  a.message = e.title;
  a.graph = e;
  return a;
}

send_reply reply_of(send_reply::kind what) {
  send_reply r;
  r.what = what;
  return r;
}

site_answer failure(site_answer::kind what, std::string message) {
  site_answer a;
  a.what = what;
  a.message = std::move(message);
  return a;
}

// The token a PUT is checked with: the one given, else the site's stored one, else the
// process-wide one. A string is the token; an answer says why there is none.
std::variant<std::string, site_answer> token_to_check(const infra::site_settings_update& u,
                                                      const infra::site_settings& cur,
                                                      const infra::config& cfg) {
  if (u.new_token) {
    return *u.new_token;
  }
  if (cur.has_site_token) {
    if (!cur.site_access_token) {
      return failure(site_answer::kind::invalid,
                     "The stored access token cannot be opened with the current WACHAT_MASTER_KEY; "
                     "send 'access_token' again.");
    }
    return *cur.site_access_token;
  }
  if (cfg.access_token) {
    return *cfg.access_token;
  }
  return failure(site_answer::kind::invalid,
                 "Field 'access_token' is required: the site has none and WHATSAPP_ACCESS_TOKEN is not set.");
}

// Calls Graph; its answer comes back as a message, so the state is touched on the actor only.
caf::typed_response_promise<site_answer> ask_graph(self_ptr self, infra::graph_request req,
                                                   std::optional<infra::site_settings_update> update) {
  auto rp = self->make_response_promise<site_answer>();
  auto id = self->state.next_call++;
  self->state.graph_waits.emplace(id, graph_wait{rp, std::move(update)});
  site_actor me{self};
  self->state.settings.graph->request(std::move(req), [me, id](infra::graph_response res) {
    caf::anon_send(me, graph_atom::value, id, std::move(res));
  });
  return rp;
}

site_answer unavailable(const settings_written& w) {
  return failure(site_answer::kind::unavailable, "The database could not be reached: " + w.error);
}

// Has the directory write the site's settings (`xs...`), takes what is stored now, and answers
// `rp` with `decide(written)`, or `unavailable` when the write did not happen.
template <class Decide, class... Ts>
void write_and_answer(self_ptr self, caf::typed_response_promise<site_answer> rp, Decide decide, Ts... xs) {
  self->request(self->state.settings.directory, caf::infinite, xs...)
      .then(
          [=](settings_written& w) mutable {
            if (w.settings) {
              self->state.settings.settings = *w.settings;
              self->state.context.reset();
            }
            rp.deliver(w.failed ? unavailable(w) : decide(w));
          },
          [=](caf::error& e) mutable { rp.deliver(failure(site_answer::kind::unavailable, to_string(e))); });
}

// Graph accepted the credentials of a PUT: the directory writes them.
void with_templates_for(self_ptr self, const std::optional<std::string>& waba, const std::optional<std::string>& token,
                        bool refresh, template_cache::done_fn then);

void write_settings(self_ptr self, graph_wait wait, const infra::graph_response& res);

// Graph accepted the credentials of a PUT. A welcome_template must name one approved template
// without parameters of the WABA being saved (domain::choose_template), else nothing is saved.
void save(self_ptr self, graph_wait wait, const infra::graph_response& res) {
  if (!wait.update->welcome_template) {
    return write_settings(self, std::move(wait), res);
  }
  const auto& cur = current(self);
  auto waba = wait.update->business_account_id ? wait.update->business_account_id : cur.business_account_id;
  auto token = wait.update->new_token ? wait.update->new_token : cur.effective_token(*self->state.settings.cfg);
  if (waba != cur.business_account_id || token != cur.effective_token(*self->state.settings.cfg)) {
    self->state.templates.invalidate();  // the list of the WABA and token being saved
  }
  auto spec = *wait.update->welcome_template;
  with_templates_for(self, waba, token, true, [=](const std::optional<domain::graph_error>& failure) mutable {
    if (!self->state.templates.fetched_at()) {
      wait.answer.deliver(wachat::actors::failure(
          site_answer::kind::invalid,
          "welcome_template cannot be checked: " + (failure ? failure->title : std::string{"no templates"}) + "."));
      return;
    }
    auto choice = domain::choose_template(self->state.templates.list(), spec, true);
    if (!choice.ok) {
      wait.answer.deliver(wachat::actors::failure(site_answer::kind::invalid, "welcome_template: " + choice.problem));
      return;
    }
    write_settings(self, std::move(wait), res);
  });
}

void write_settings(self_ptr self, graph_wait wait, const infra::graph_response& res) {
  auto update = std::move(*wait.update);
  update.display_phone_number = infra::display_phone_number(res.body);
  auto phone = infra::phone_fields_json(res.body);
  auto site = current(self).site_id;
  bool token_changed = update.new_token.has_value();
  auto decide = [site, phone, token_changed](settings_written& w) {
    if (w.result == infra::settings_write::not_found) {
      return failure(site_answer::kind::not_found, "No such site.");
    }
    if (w.result == infra::settings_write::phone_number_in_use) {
      return failure(site_answer::kind::conflict, "Another site uses this phone_number_id already.");
    }
    infra::log_info("site_settings_saved", {{"site", site}, {"token_changed", token_changed ? "yes" : "no"}});
    site_answer a;
    a.phone_json = phone;
    a.settings = std::move(w.settings);
    return a;
  };
  write_and_answer(self, wait.answer, decide, save_atom::value, site, std::move(update));
}

void settings_checked(self_ptr self, graph_wait wait, const infra::graph_response& res) {
  const auto& site = current(self).site_id;
  if (res.ok()) {
    return save(self, std::move(wait), res);
  }
  auto action = domain::classify_graph_error(*res.error);
  // Meta answered and said no: the credentials (or the id) are wrong. Nothing is saved.
  bool refused = !res.error->transport && res.status >= 400 && res.status < 500 &&
                 !domain::is_retryable(action);
  infra::log_info("site_settings_rejected", {{"site", site}, {"graph_code", std::to_string(res.error->code)}});
  auto a = refused ? failure(site_answer::kind::graph_refused,
                             "The Graph API refused these credentials; nothing was saved.")
                   : failure(site_answer::kind::graph_unreachable,
                             "The Graph API could not be reached to check the credentials; nothing was saved.");
  a.graph = res.error;
  wait.answer.deliver(std::move(a));
}

// Records a test's outcome on the site, then answers it.
void record_check(self_ptr self, caf::typed_response_promise<site_answer> rp, site_answer a) {
  std::string error = a.check_ok ? "" : (a.graph ? a.graph->title : a.message);
  if (a.graph && domain::classify_graph_error(*a.graph) == domain::graph_error_action::credentials_broken) {
    error = domain::credentials_refused_note(*a.graph);
  }
  write_and_answer(
      self, rp, [a](settings_written&) { return a; }, record_atom::value, current(self).site_id, a.check_ok,
      error);
}

void graph_answered(self_ptr self, std::uint64_t id, infra::graph_response& res) {
  auto it = self->state.graph_waits.find(id);
  if (it == self->state.graph_waits.end()) {
    return;
  }
  auto wait = std::move(it->second);
  self->state.graph_waits.erase(it);
  if (wait.update) {
    return settings_checked(self, std::move(wait), res);
  }
  if (wait.test_message) {
    site_answer a;
    if (res.ok()) {
      auto j = nlohmann::json::parse(res.body, nullptr, false);
      if (j.is_object() && j["messages"].is_array() && !j["messages"].empty() && j["messages"][0]["id"].is_string()) {
        a.whatsapp_message_id = j["messages"][0]["id"].get<std::string>();
      }
    } else {
      a = failure_graph(*res.error);
    }
    wait.answer.deliver(std::move(a));
    return;
  }
  site_answer a;
  a.check_ok = res.ok();
  if (res.ok()) {
    a.phone_json = infra::phone_fields_json(res.body);
  } else {
    a.graph = res.error;
  }
  record_check(self, wait.answer, std::move(a));
}

caf::result<site_answer> change(self_ptr self, infra::site_settings_update& u) {
  const auto& cur = current(self);
  if (!u.phone_number_id) {
    u.phone_number_id = cur.phone_number_id;
  }
  if (!u.phone_number_id) {
    return failure(site_answer::kind::invalid, "Field 'phone_number_id' is required.");
  }
  auto token = token_to_check(u, cur, *self->state.settings.cfg);
  if (auto* no = std::get_if<site_answer>(&token)) {
    return std::move(*no);
  }
  auto req = infra::phone_check_request(*u.phone_number_id, std::get<std::string>(std::move(token)));
  return ask_graph(self, std::move(req), std::move(u));
}

caf::result<site_answer> check(self_ptr self) {
  const auto& cur = current(self);
  const auto& cfg = *self->state.settings.cfg;
  auto token = cur.effective_token(cfg);
  auto phone_id = cur.effective_phone_number_id(cfg);
  if (!token || !phone_id) {
    site_answer a;
    a.check_ok = false;
    a.message = cur.has_site_token && !token
                    ? "The stored access token cannot be opened with the current WACHAT_MASTER_KEY."
                    : "No credentials: save settings or set the WHATSAPP_* variables.";
    auto rp = self->make_response_promise<site_answer>();
    record_check(self, rp, std::move(a));
    return rp;
  }
  return ask_graph(self, infra::phone_check_request(*phone_id, *token), std::nullopt);
}

caf::result<site_answer> remove(self_ptr self) {
  auto rp = self->make_response_promise<site_answer>();
  auto site = current(self).site_id;
  auto decide = [site](settings_written& w) {
    if (w.result == infra::settings_write::not_found) {
      return failure(site_answer::kind::not_found, "No such site.");
    }
    infra::log_info("site_settings_removed", {{"site", site}});
    return site_answer{};
  };
  write_and_answer(self, rp, decide, clear_atom::value, site);
  return rp;
}

conversation_links links_of(self_ptr self) {
  auto links = self->state.settings.conversations;
  links.site_id = current(self).site_id;
  return links;
}

// The live actor of the customer `key` (their phone, else their BSUID), spawned if needed.
live_conversation& conversation_for(self_ptr self, const std::string& key) {
  auto& st = self->state;
  auto it = st.conversations.find(key);
  if (it == st.conversations.end()) {
    auto actor = caf::actor_cast<conversation_actor>(
        self->spawn(conversation, links_of(self), site_actor{self}, key));
    it = st.conversations.emplace(key, live_conversation{actor, 0}).first;
    if (auto* g = st.settings.live_conversations) {
      g->fetch_add(1);
    }
  }
  return it->second;
}

// Where read receipts go when the site's read_receipts is `mode` and it can send; none otherwise.
// Kept while the settings stay the same, so each unit only copies a pointer.
std::shared_ptr<const read_receipt_target> receipt_target(self_ptr self, std::string_view mode) {
  auto& st = self->state;
  const auto& cur = current(self);
  if (cur.read_receipts != mode || !cur.enabled) {
    return nullptr;
  }
  auto token = cur.effective_token(*st.settings.cfg);
  auto number = cur.effective_phone_number_id(*st.settings.cfg);
  if (!token || !number) {
    return nullptr;
  }
  if (!st.receipt || st.receipt->phone_number_id != *number || st.receipt->access_token != *token) {
    st.receipt = std::make_shared<const read_receipt_target>(read_receipt_target{*number, *token});
  }
  return st.receipt;
}

// The context of this site's customer messages, kept until the settings change.
std::shared_ptr<const unit_context> unit_context_of(self_ptr self) {
  auto& st = self->state;
  if (!st.context) {
    unit_context c;
    if (auto target = receipt_target(self, "on_receipt")) {
      c.receipt = *target;
    }
    c.opt_out_keywords = current(self).opt_out_keywords;
    c.opt_in_keywords = current(self).opt_in_keywords;
    c.welcome = current(self).welcome_template.has_value() && current(self).enabled;
    st.context = std::make_shared<const unit_context>(std::move(c));
  }
  return st.context;
}

// Makes the template cache's next Graph request; the answer comes back as `tpage`.
void fetch_templates(self_ptr self, std::optional<infra::graph_request> req) {
  if (!req) {
    return;
  }
  site_actor me{self};
  auto generation = self->state.templates.generation();
  self->state.settings.graph->request(std::move(*req), [me, generation](infra::graph_response res) {
    caf::anon_send(me, tpage_atom::value, generation, std::move(res));
  });
}

// Runs `then` once the site's templates are fresh (or could not be fetched: `failure`); a site
// without a WABA id or token gets a failure saying so.
void with_templates_for(self_ptr self, const std::optional<std::string>& waba, const std::optional<std::string>& token,
                        bool refresh, template_cache::done_fn then) {
  if (!waba || !token) {
    domain::graph_error e;
    e.title = !waba ? "The site has no business_account_id: its templates cannot be listed"
                    : "The site has no access token: its templates cannot be listed";
    return then(e);
  }
  fetch_templates(self, self->state.templates.want(refresh, std::move(then), *waba, *token));
}

void with_templates(self_ptr self, bool refresh, template_cache::done_fn then) {
  const auto& cur = current(self);
  with_templates_for(self, cur.business_account_id, cur.effective_token(*self->state.settings.cfg), refresh,
                     std::move(then));
}

std::string templates_body(const template_cache& cache) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& t : cache.list()) {
    list.push_back(domain::template_json(t));
  }
  nlohmann::json error = nullptr;
  if (cache.last_error()) {
    error = {{"code", cache.last_error()->code}, {"title", cache.last_error()->title}};
  }
  return infra::dump({{"templates", list},
                      {"fetched_at", cache.fetched_at() ? nlohmann::json(infra::rfc3339(*cache.fetched_at())) : nlohmann::json(nullptr)},
                      {"error", error}});
}

// POST .../whatsapp/test-message: straight to Meta with the site's credentials (a template is
// checked against the site's templates first); nothing is stored.
caf::result<site_answer> test_message(self_ptr self, const std::string& to, domain::outbound_request r) {
  const auto& cur = current(self);
  const auto& cfg = *self->state.settings.cfg;
  auto token = cur.effective_token(cfg);
  auto number = cur.effective_phone_number_id(cfg);
  if (!token || !number) {
    return failure(site_answer::kind::invalid, "No credentials: save settings or set the WHATSAPP_* variables.");
  }
  auto rp = self->make_response_promise<site_answer>();
  auto go = [=](const domain::outbound_request& checked) mutable {
    auto body = domain::graph_send_body(checked, domain::recipient{to, std::nullopt}, 0, std::nullopt);
    body.erase("biz_opaque_callback_data");  // no message of ours
    infra::graph_request req;
    req.method = infra::graph_method::post;
    req.path = "/" + *number + "/messages";
    req.access_token = *token;
    req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto id = self->state.next_call++;
    self->state.graph_waits.emplace(id, graph_wait{rp, std::nullopt, true});
    site_actor me{self};
    self->state.settings.graph->request(std::move(req), [me, id](infra::graph_response res) {
      caf::anon_send(me, graph_atom::value, id, std::move(res));
    });
  };
  if (r.kind != domain::outbound_kind::template_message) {
    go(r);
    return rp;
  }
  with_templates(self, false, [=](const std::optional<domain::graph_error>& failure) mutable {
    if (!self->state.templates.fetched_at()) {
      rp.deliver(failure ? failure_graph(*failure) : site_answer{});
      return;
    }
    auto check = domain::check_template_send(self->state.templates.list(), r.template_object);
    if (!check.ok) {
      rp.deliver(wachat::actors::failure(site_answer::kind::template_invalid, check.problem));
      return;
    }
    go(r);
  });
  return rp;
}

// The site's welcome_template as the first business message of a new conversation (API.md
// §3.2). It goes like an agent's template send, with client_message_id "welcome", so a delivery
// processed twice still sends it once; what becomes of it is logged.
void welcome(self_ptr self, const std::string& key, std::int64_t conversation) {
  auto spec = current(self).welcome_template;
  if (!spec) {
    return;
  }
  with_templates(self, false, [=](const std::optional<domain::graph_error>&) {
    auto choice = domain::choose_template(self->state.templates.list(), *spec, true);
    const auto& site = current(self).site_id;
    if (!choice.ok) {
      infra::log_warn("welcome_not_sent", {{"site", site}, {"reason", choice.problem}});
      return;
    }
    outbound_send s;
    s.conversation_id = conversation;
    s.site = site;
    s.request.kind = domain::outbound_kind::template_message;
    s.request.template_object = {{"name", choice.name}, {"language", choice.language}};
    s.request.sender_id = "wachat";
    s.request.sender_name = "Welcome";
    s.request.client_message_id = "welcome";
    s.request.fingerprint = "welcome:" + choice.name + "@" + choice.language;
    self->request(site_actor{self}, caf::infinite, send_atom::value, key, std::move(s))
        .then(
            [=](send_reply& r) {
              infra::log_info("welcome_sent", {{"site", site},
                                               {"conversation_id", std::to_string(conversation)},
                                               {"outcome", std::to_string(static_cast<int>(r.what))}});
            },
            [=](caf::error& e) { infra::log_warn("welcome_not_sent", {{"site", site}, {"reason", to_string(e)}}); });
  });
}

// A template send is checked against the site's templates before its conversation sees it.
caf::result<send_reply> send_template(self_ptr self, const std::string& key, outbound_send s) {
  auto rp = self->make_response_promise<send_reply>();
  with_templates(self, false, [=](const std::optional<domain::graph_error>& failure) mutable {
    auto& cache = self->state.templates;
    if (!cache.fetched_at()) {
      auto r = reply_of(send_reply::kind::templates_unavailable);
      r.graph = failure;
      rp.deliver(std::move(r));
      return;
    }
    auto check = domain::check_template_send(cache.list(), s.request.template_object);
    if (!check.ok) {
      auto r = reply_of(send_reply::kind::template_invalid);
      r.error = check.problem;
      rp.deliver(std::move(r));
      return;
    }
    s.request.rendered_text = check.rendered_body;
    s.request.template_category = check.category;
    auto& conv = conversation_for(self, key);
    ++conv.forwarded;
    self->request(conv.actor, caf::infinite, send_atom::value, std::move(s))
        .then([=](send_reply& r) mutable { rp.deliver(std::move(r)); },
              [=](caf::error& e) mutable {
                auto r = reply_of(send_reply::kind::unavailable);
                r.error = to_string(e);
                rp.deliver(std::move(r));
              });
  });
  return rp;
}

site_actor::behavior_type site(self_ptr self, site_actor_settings settings) {
  self->state.settings = std::move(settings);
  return {
      [=](store_atom, unit_job& job) -> caf::result<domain::unit_outcome> {
        if (job.unit->what == domain::inbound_unit::kind::message && !job.unit->message.reaction) {
          job.context = unit_context_of(self);
        }
        // The conversation actor answers the dispatcher directly.
        auto& conv = conversation_for(self, job.unit->visitor_wa_id);
        ++conv.forwarded;
        return self->delegate(conv.actor, store_atom::value, std::move(job));
      },
      [=](patch_atom, const std::string& key, infra::conversation_change& change) -> caf::result<conversation_reply> {
        if (change.mark_read) {
          if (auto target = receipt_target(self, "on_agent_view")) {
            change.receipt_phone_number_id = target->phone_number_id;
            change.receipt_token = target->access_token;
          }
        }
        auto& conv = conversation_for(self, key);
        ++conv.forwarded;
        return self->delegate(conv.actor, patch_atom::value, std::move(change));
      },
      [=](send_atom, const std::string& key, outbound_send& s) -> caf::result<send_reply> {
        // The site's settings decide whether it may send at all, and how.
        const auto& cur = current(self);
        auto token = cur.effective_token(*self->state.settings.cfg);
        auto number = cur.effective_phone_number_id(*self->state.settings.cfg);
        if (!cur.enabled) {
          return reply_of(send_reply::kind::disabled);
        }
        if (!token || !number) {
          return reply_of(send_reply::kind::not_configured);
        }
        if (cur.last_check_ok == false && cur.last_check_error &&
            domain::says_credentials_refused(*cur.last_check_error)) {
          auto r = reply_of(send_reply::kind::credentials_refused);
          r.error = *cur.last_check_error;
          return r;
        }
        s.phone_number_id = *number;
        s.access_token = *token;
        if (s.resend_message_id == 0 && s.request.kind == domain::outbound_kind::template_message) {
          return send_template(self, key, std::move(s));
        }
        auto& conv = conversation_for(self, key);
        ++conv.forwarded;
        return self->delegate(conv.actor, send_atom::value, std::move(s));
      },
      [=](resume_atom, const std::string& key, std::int64_t message_id) {
        const auto& cur = current(self);
        auto token = cur.effective_token(*self->state.settings.cfg);
        auto number = cur.effective_phone_number_id(*self->state.settings.cfg);
        if (!cur.enabled || !token || !number) {
          return;  // kept in the outbox until the site can send again
        }
        auto& conv = conversation_for(self, key);
        ++conv.forwarded;
        self->send(conv.actor, resume_atom::value, message_id, *number, *token);
      },
      [=](templates_atom, bool refresh) -> caf::result<site_answer> {
        auto rp = self->make_response_promise<site_answer>();
        with_templates(self, refresh, [=](const std::optional<domain::graph_error>& failure) mutable {
          if (!self->state.templates.fetched_at()) {
            // Nothing to show: Meta's refusal (or why it could not be asked) is the answer.
            site_answer a = failure ? failure_graph(*failure) : site_answer{};
            rp.deliver(std::move(a));
            return;
          }
          site_answer a;
          a.templates_json = templates_body(self->state.templates);
          rp.deliver(std::move(a));
        });
        return rp;
      },
      [=](tpage_atom, std::uint64_t generation, infra::graph_response& res) {
        fetch_templates(self, self->state.templates.page(generation, res));
      },
      [=](testmsg_atom, const std::string& to, domain::outbound_request& r) { return test_message(self, to, std::move(r)); },
      [=](welcome_atom, const std::string& key, std::int64_t conversation) { welcome(self, key, conversation); },
      [=](tchanged_atom) { self->state.templates.expire(); },
      [=](broken_atom, const domain::graph_error& e) {
        auto note = domain::credentials_refused_note(e);
        infra::log_warn("site_credentials_refused", {{"site", current(self).site_id}, {"graph_code", std::to_string(e.code)}});
        self->request(self->state.settings.directory, caf::infinite, record_atom::value, current(self).site_id, false,
                      note)
            .then([=](settings_written& w) {
                    if (w.settings) {
                      self->state.settings.settings = *w.settings;
                      self->state.context.reset();
                    }
                  },
                  [=](caf::error&) {});
      },
      [=](pace_atom) -> std::int64_t {
        auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
        return self->state.pacer.reserve(now, current(self).messages_per_second);
      },
      [=](read_atom) -> site_answer {
        site_answer a;
        a.settings = current(self);
        return a;
      },
      [=](change_atom, infra::site_settings_update& u) { return change(self, u); },
      [=](remove_atom) { return remove(self); },
      [=](check_atom) { return check(self); },
      [=](refresh_atom, infra::site_settings& s) {
        const auto& old = current(self);
        if (old.business_account_id != s.business_account_id || old.site_access_token != s.site_access_token) {
          self->state.templates.invalidate();
        }
        self->state.settings.settings = std::move(s);
        self->state.context.reset();
      },
      [=](graph_atom, std::uint64_t id, infra::graph_response& res) { graph_answered(self, id, res); },
      [=](idle_atom, const std::string& key, caf::actor_id who, std::uint64_t received) {
        auto& st = self->state;
        auto it = st.conversations.find(key);
        // Retire it only if it has taken every unit we sent it: a unit still on its way means
        // it is not idle, and a replacement could otherwise run beside it, out of order.
        if (it != st.conversations.end() && it->second.actor.id() == who &&
            it->second.forwarded == received) {
          auto actor = it->second.actor;
          st.conversations.erase(it);
          self->send(actor, stop_atom::value);
          if (auto* g = st.settings.live_conversations) {
            g->fetch_sub(1);
          }
        }
      },
      [=](stop_atom) {
        // The children are stopped here, from the behaviour: a functor attached for this would
        // run after CAF 0.17 destroyed the state, reach no child, and a child never told to
        // stop keeps ~actor_system (and so the process) waiting for ever.
        auto& st = self->state;
        for (auto& [key, conv] : st.conversations) {
          self->send(conv.actor, stop_atom::value);
        }
        if (auto* g = st.settings.live_conversations) {
          g->fetch_sub(static_cast<std::int64_t>(st.conversations.size()));
        }
        st.conversations.clear();
        self->quit();
      },
  };
}

}  // namespace

site_actor spawn_site_actor(caf::actor_system& sys, site_actor_settings settings) {
  return sys.spawn(site, std::move(settings));
}

}  // namespace wachat::actors
