#include "actors/site/conversation_actor.hpp"

#include <caf/all.hpp>
#include <algorithm>
#include <ctime>
#include <optional>
#include <random>

#include "domain/inbound_units.hpp"
#include "domain/outbound.hpp"
#include "domain/send_pacing.hpp"
#include "domain/window.hpp"
#include "infra/log.hpp"

namespace wachat::actors {

void decide(conversation_state& st, unit_job& job, std::int64_t now) {
  const auto& u = *job.unit;
  if (u.what == domain::inbound_unit::kind::preference) {
    return;  // moves no window
  }
  if (u.what == domain::inbound_unit::kind::status) {
    job.closes_window = domain::closes_window(u.status);
    if (job.closes_window) {
      st.window_expiry = 0;  // shut as of the status's time, unless a later message is stored
    }
    return;
  }
  if (u.message.reaction) {
    return;
  }
  st.window_expiry =
      domain::window_expiry_after(st.window_expiry, domain::plausible_timestamp(u.message.timestamp, now));
  job.window_expiry = st.window_expiry;
}

namespace {

using self_ptr = conversation_impl::stateful_pointer<conversation_state>;

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

send_reply reply(send_reply::kind what, std::string message = {}) {
  send_reply r;
  r.what = what;
  r.message = std::move(message);
  return r;
}

// Answers the request waiting for `id`, if it still waits.
void answer(self_ptr self, std::int64_t id, send_reply r) {
  auto it = self->state.waiting.find(id);
  if (it != self->state.waiting.end()) {
    it->second.answer.deliver(std::move(r));
    self->state.waiting.erase(it);
  }
}

void pump(self_ptr self);
void pace_front(self_ptr self, bool claimed);

// Counts a request; an actor that asked to be retired (and was not) checks for idleness again.
void took_request(self_ptr self) {
  auto& st = self->state;
  ++st.received;
  if (st.idle_asked) {
    st.idle_asked = false;
    self->delayed_send(self, st.idle, idlecheck_atom::value);
  }
}

// Files the request of a send until its outcome, or until send_wait has passed (then `queued`).
void add_waiter(self_ptr self, std::int64_t id, caf::typed_response_promise<send_reply> rp, std::string message) {
  auto& st = self->state;
  st.waiting[id] = send_waiter{std::move(rp), std::move(message), std::chrono::steady_clock::now() + st.send_wait};
  if (!st.wait_check_pending) {
    st.wait_check_pending = true;
    self->delayed_send(self, st.send_wait, wait_atom::value, id);
  }
}

// Answers `queued` to every request whose wait has ended; the next turn is for the earliest left.
void end_waits(self_ptr self) {
  auto& st = self->state;
  st.wait_check_pending = false;
  const auto now = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> next;
  for (auto it = st.waiting.begin(); it != st.waiting.end();) {
    if (it->second.deadline <= now) {
      it->second.answer.deliver(reply(send_reply::kind::queued, it->second.message));
      it = st.waiting.erase(it);
      continue;
    }
    next = next ? std::min(*next, it->second.deadline) : it->second.deadline;
    ++it;
  }
  if (next) {
    st.wait_check_pending = true;
    auto in = std::chrono::duration_cast<std::chrono::microseconds>(*next - now) + std::chrono::microseconds(1);
    self->delayed_send(self, in, wait_atom::value, std::int64_t{0});
  }
}

// deliver() returns a value, which response handlers must not.
void give(caf::typed_response_promise<send_reply>& rp, send_reply r) { rp.deliver(std::move(r)); }

// The front send is done with (sent, given up, or someone else's now).
void pop_front(self_ptr self) {
  auto& st = self->state;
  st.sends.pop_front();
  st.attempting = false;
  --st.in_flight;
  pump(self);
}

// Tries the front send again after `delay` (its attempt is not used up).
void again_after(self_ptr self, std::chrono::milliseconds delay) {
  self->delayed_send(self, delay, retry_atom::value);
}

void failed_attempt(self_ptr self, const queued_send& s, attempt_result& r) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  const auto error = r.error.value_or(domain::graph_error{});
  auto d = domain::decide_failed_attempt(error, r.request_sent, r.attempt,
                                         std::uniform_real_distribution<double>{0.0, 1.0}(rng));
  attempt_decision rec;
  rec.message_id = s.message_id;
  rec.error = error;
  rec.retryable = d.retryable;
  rec.give_up = d.what == domain::failed_attempt_decision::kind::give_up;
  auto delay = d.what == domain::failed_attempt_decision::kind::doubt ? self->state.send_doubt : d.delay;
  rec.delay_ms = delay.count();
  infra::log_warn("send_attempt_failed", {{"message_id", std::to_string(s.message_id)},
                                          {"attempt", std::to_string(r.attempt)},
                                          {"code", std::to_string(error.code)},
                                          {"action", std::string{domain::to_string(d.action)}},
                                          {"error", error.title}});
  if (error.code == 131050 || d.action == domain::graph_error_action::fail_window_closed) {
    self->state.known_facts.reset();  // both change below
  }
  if (error.code == 131050) {
    // Meta says the customer stopped marketing messages: the customer of the message as they are
    // now (this actor's key may be a number they left, or a BSUID since linked to a phone).
    self->send(self->state.sender, optout_atom::value, s.message_id);
  }
  if (d.action == domain::graph_error_action::fail_window_closed) {
    // Meta says the window is closed whatever we knew: shut it, as a 131047 status would.
    self->state.window_expiry = 0;
    rec.window_closed_at = unix_now();
  }
  if (d.action == domain::graph_error_action::credentials_broken) {
    // The site refuses further sends at once until its credentials are fixed.
    self->send(self->state.site, broken_atom::value, error);
  }
  const auto id = s.message_id;
  self->request(self->state.sender, caf::infinite, settle_atom::value, rec)
      .then(
          [=](std::string& message) {
            if (rec.give_up) {
              auto out = reply(send_reply::kind::failed, std::move(message));
              out.graph = rec.error;
              answer(self, id, std::move(out));
              return pop_front(self);
            }
            again_after(self, std::chrono::milliseconds(rec.delay_ms));
          },
          [=](caf::error&) {
            // Not recorded: the entry stays `sending` until the doubt period brings it back.
            pop_front(self);
          });
}

// The front send's attempt, once its slot in the number's send rate has come. `claimed`: its
// entry was claimed as it was queued, and the sender that queued it holds the claim.
void attempt(self_ptr self, bool claimed = false) {
  auto& st = self->state;
  if (st.sends.empty()) {
    st.attempting = false;
    return;
  }
  auto front = st.sends.front();
  self->request(st.sender, caf::infinite, attempt_atom::value,
                attempt_job{front.message_id, front.phone_number_id, front.access_token, claimed, st.depart_by_us})
      .then(
          [=](attempt_result& r) {
            switch (r.what) {
              case attempt_result::kind::sent:
                answer(self, front.message_id, reply(send_reply::kind::sent, std::move(r.message)));
                return pop_front(self);
              case attempt_result::kind::not_claimed:
                // Sent or given up already, held by another process, or behind an earlier
                // send: whoever holds it finishes it; the outbox sweep brings back what waits.
                answer(self, front.message_id, reply(send_reply::kind::replayed, std::move(r.message)));
                return pop_front(self);
              case attempt_result::kind::unavailable:
                return again_after(self, std::chrono::seconds(1));
              case attempt_result::kind::late:
                // Its slot passed while the sender was busy: a new slot, so that it does not
                // crowd the sends of later slots at Meta (the sender gave its claim back).
                return pace_front(self, false);
              case attempt_result::kind::failed:
                return failed_attempt(self, front, r);
            }
          },
          [=](caf::error&) {
            // The sender died with it, or none is up: the entry is still in the database.
            again_after(self, std::chrono::seconds(1));
          });
}

// The front send's slot is at `slot`, `wait_us` after it was asked for: it must have left by
// then plus the lateness allowed (attempt_job::depart_by_us) when the number's rate held it back
// (a later slot). A slot given at once means the number is under its rate: a late departure
// cannot put more than the rate into a second then, and a limit would only make a sender that
// is merely busy do its sends twice over (each late one asking again, and again late).
void slot_taken(self_ptr self, std::chrono::steady_clock::time_point slot, std::int64_t wait_us) {
  if (domain::slot_is_now(wait_us)) {
    self->state.depart_by_us = 0;
    return;
  }
  self->state.depart_by_us =
      std::chrono::duration_cast<std::chrono::microseconds>(slot.time_since_epoch()).count() +
      domain::slot_lateness_us;
}

// Takes a slot for the front send and attempts it then. `claimed`: the sender holds its claim.
void pace_front(self_ptr self, bool claimed) {
  // The site hands out slots at its messages_per_second: over the rate, sends wait here.
  self->request(self->state.site, caf::infinite, pace_atom::value)
      .then(
          [=](std::int64_t wait_us) {
            slot_taken(self, std::chrono::steady_clock::now() + std::chrono::microseconds(std::max<std::int64_t>(wait_us, 0)),
                       wait_us);
            if (domain::slot_is_now(wait_us)) {
              return attempt(self, claimed);
            }
            self->delayed_send(self, std::chrono::microseconds(wait_us), go_atom::value, claimed);
          },
          [=](caf::error&) {
            self->state.depart_by_us = 0;  // no site to ask, no slot to keep
            attempt(self, claimed);
          });
}

void pump(self_ptr self) {
  auto& st = self->state;
  if (st.attempting || st.sends.empty()) {
    return;
  }
  st.attempting = true;
  pace_front(self, false);
}

// Adds a send in message order (a resumed entry may be older than those queued).
void enqueue(self_ptr self, queued_send s) {
  auto& sends = self->state.sends;
  for (const auto& q : sends) {
    if (q.message_id == s.message_id) {
      return;
    }
  }
  auto pos = sends.end();
  // Never in front of the one being attempted.
  for (auto it = sends.begin() + (self->state.attempting && !sends.empty() ? 1 : 0); it != sends.end(); ++it) {
    if (it->message_id > s.message_id) {
      pos = it;
      break;
    }
  }
  sends.insert(pos, std::move(s));
  ++self->state.in_flight;
  pump(self);
}

send_reply verdict_reply(domain::send_verdict v, const infra::send_facts& f) {
  switch (v) {
    case domain::send_verdict::replay: {
      auto r = reply(send_reply::kind::replayed, f.earlier_message);
      return r;
    }
    case domain::send_verdict::idempotency_conflict: return reply(send_reply::kind::idempotency_conflict);
    case domain::send_verdict::no_recipient: return reply(send_reply::kind::no_recipient);
    case domain::send_verdict::window_closed: return reply(send_reply::kind::window_closed);
    case domain::send_verdict::recipient_opted_out: return reply(send_reply::kind::recipient_opted_out);
    case domain::send_verdict::go: break;
  }
  return reply(send_reply::kind::unavailable);
}

void enqueue_send(self_ptr self, outbound_send s, caf::typed_response_promise<send_reply> rp,
                  std::optional<std::chrono::steady_clock::time_point> slot, std::optional<std::int64_t> slot_wait_us);
void decide_on_facts(self_ptr self, outbound_send s, caf::typed_response_promise<send_reply> rp);

// The second step of a send the actor decided to make: the message and its outbox entry. A send
// that will be the front one takes its slot in the number's rate first, so that its entry can be
// claimed in the same statement and Meta called when the slot comes: a statement and a batch turn
// less than claiming it afterwards.
void commit_send(self_ptr self, outbound_send s, caf::typed_response_promise<send_reply> rp) {
  auto& st = self->state;
  if (!st.sends.empty() || st.attempting) {
    return enqueue_send(self, std::move(s), rp, std::nullopt, std::nullopt);
  }
  // await: nothing else of this conversation runs until the send is queued, as below.
  self->request(st.site, caf::infinite, pace_atom::value)
      .await(
          [=](std::int64_t wait_us) mutable {
            const auto wait = std::chrono::microseconds(std::max<std::int64_t>(wait_us, 0));
            enqueue_send(self, std::move(s), rp, std::chrono::steady_clock::now() + wait, wait_us);
          },
          // As pump() does: no site to ask, no slot to wait for.
          [=](caf::error&) mutable {
            enqueue_send(self, std::move(s), rp, std::chrono::steady_clock::now(), std::nullopt);
          });
}

// How far ahead a front send's slot may be for its entry to be claimed as it is queued: the
// claim then waits in its sender for the slot (a second at most, far below the doubt period,
// which counts from the slot). A later slot is rare (a backlog at the number's rate), and its
// send is claimed when the slot comes.
constexpr std::int64_t claim_ahead_us = 1'000'000;

std::int64_t us_until(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t - std::chrono::steady_clock::now()).count();
}

// Queues the send; `slot`: it is the front send, and its slot in the number's rate is then
// (`slot_wait_us` after it was asked for; none when no site could be asked: no slot to keep).
void enqueue_send(self_ptr self, outbound_send s, caf::typed_response_promise<send_reply> rp,
                  std::optional<std::chrono::steady_clock::time_point> slot, std::optional<std::int64_t> slot_wait_us) {
  s.claim_after_us.reset();  // a send decided again (`stale`) comes back with its first slot's
  if (slot && us_until(*slot) <= claim_ahead_us) {
    s.claim_after_us = std::max<std::int64_t>(us_until(*slot), 0);
  }
  self->request(self->state.sender, caf::infinite, enqueue_atom::value, s)
      .await(
          [=](infra::send_enqueued& e) mutable {
            using K = infra::send_enqueued::kind;
            if (e.what == K::stale) {
              // Decided on kept facts that changed meanwhile (another process, say): decided
              // again on facts read now. The slot taken, if any, goes unused.
              self->state.known_facts.reset();
              return decide_on_facts(self, std::move(s), rp);
            }
            if (e.what != K::queued) {
              --self->state.in_flight;
              switch (e.what) {
                case K::not_found: return give(rp, reply(send_reply::kind::not_found));
                case K::unknown_reply: return give(rp, reply(send_reply::kind::unknown_reply));
                default:  // a concurrent request with the same client_message_id won
                  return give(rp, e.fingerprint == s.request.fingerprint
                                        ? reply(send_reply::kind::replayed, std::move(e.message))
                                        : reply(send_reply::kind::idempotency_conflict));
              }
            }
            add_waiter(self, e.message_id, rp, e.message);
            --self->state.in_flight;  // enqueue() counts it again as a queued send
            auto& st = self->state;
            if (!slot) {
              return enqueue(self, queued_send{e.message_id, s.phone_number_id, s.access_token});
            }
            // The front send (await kept the queue as it was), with its slot taken: attempting,
            // so that enqueue() neither puts it behind another nor asks for a second slot.
            st.attempting = true;
            enqueue(self, queued_send{e.message_id, s.phone_number_id, s.access_token});
            if (slot_wait_us) {
              slot_taken(self, *slot, *slot_wait_us);
            } else {
              st.depart_by_us = 0;
            }
            const auto left = us_until(*slot);
            if (domain::slot_is_now(left)) {
              return attempt(self, e.claim.claimed);
            }
            self->delayed_send(self, std::chrono::microseconds(left), go_atom::value, e.claim.claimed);
          },
          [=](caf::error& e) mutable {
            --self->state.in_flight;
            auto r = reply(send_reply::kind::unavailable);
            r.error = to_string(e);
            rp.deliver(std::move(r));
          });
}

// An agent's reaction: no message of its own, so no outbox entry; Meta is asked at once and its
// answer is the API's (API.md §3.4: 200 with the target and its reactions).
void react(self_ptr self, outbound_send s, caf::typed_response_promise<send_reply> rp) {
  reaction_job job{s.conversation_id, s.request.reaction_target, s.request.emoji, s.phone_number_id, s.access_token};
  self->request(self->state.sender, caf::infinite, react_atom::value, std::move(job))
      .then(
          [=](attempt_result& r) mutable {
            --self->state.in_flight;
            switch (r.what) {
              case attempt_result::kind::sent: return give(rp, reply(send_reply::kind::reacted, std::move(r.message)));
              case attempt_result::kind::not_claimed: return give(rp, reply(send_reply::kind::unknown_target));
              case attempt_result::kind::failed: {
                auto out = reply(send_reply::kind::refused);
                out.graph = r.error;
                return give(rp, std::move(out));
              }
              case attempt_result::kind::unavailable:
              case attempt_result::kind::late: break;
            }
            give(rp, reply(send_reply::kind::unavailable));
          },
          [=](caf::error&) mutable {
            --self->state.in_flight;
            give(rp, reply(send_reply::kind::unavailable));
          });
}

// What a newly stored customer message sets off: its read receipt (on_receipt), and an opt-out
// or opt-in keyword taking effect (domain::keyword_opt_out).
void after_customer_message(self_ptr self, const unit_context& c, const domain::inbound_unit& u) {
  auto& st = self->state;
  if (c.receipt && !u.message.wamid.empty()) {
    self->send(st.sender, markread_atom::value, c.receipt->phone_number_id, c.receipt->access_token,
               u.message.wamid, false);
  }
  if (u.message.type == "text") {
    if (auto opt_out = domain::keyword_opt_out(u.message.content, c.opt_out_keywords, c.opt_in_keywords)) {
      self->send(st.sender, optout_atom::value, st.site_id, st.key, *opt_out);
    }
  }
}

// The facts a reply to a customer's message just stored is decided on, without reading them: the
// window as this actor decided it, a recipient (the customer wrote from one), the opt-out as last
// known (not opted out when none was). They are a guess the enqueue statement checks (`stale`
// when another process stored a later window, say), so a wrong one costs a read, never a wrong
// send. Saved is the read for the commonest send of all: the agent answering what just came.
std::optional<infra::decided_facts> facts_after_customer_message(const unit_context& c, const domain::inbound_unit& u,
                                                                 std::int64_t window, bool kept_opt_out) {
  if (u.message.reaction || window == 0) {
    return std::nullopt;  // moved no window
  }
  if (u.message.type == "text" && domain::keyword_opt_out(u.message.content, c.opt_out_keywords, c.opt_in_keywords)) {
    return std::nullopt;  // the opt-out changes, written by the sender a moment later
  }
  return infra::decided_facts{window, true, kept_opt_out};
}

// A retry by hand: decided like a send (domain::decide_retry), then the same row queued again.
void resend(self_ptr self, outbound_send s, caf::typed_response_promise<send_reply> rp) {
  const auto id = s.resend_message_id;
  self->request(self->state.sender, caf::infinite, refacts_atom::value, s.site, s.conversation_id, id)
      .await(
          [=](infra::resend_facts& f) mutable {
            auto fail = [&](send_reply::kind k) {
              --self->state.in_flight;
              give(rp, reply(k, f.message));
            };
            if (!f.found) {
              return fail(send_reply::kind::not_found);
            }
            switch (domain::decide_retry(f.failed_send, f.is_template, f.has_recipient, f.window_expires_at,
                                         unix_now())) {
              case domain::retry_verdict::invalid_state: return fail(send_reply::kind::invalid_state);
              case domain::retry_verdict::no_recipient: return fail(send_reply::kind::no_recipient);
              case domain::retry_verdict::window_closed: return fail(send_reply::kind::window_closed);
              case domain::retry_verdict::go: break;
            }
            self->request(self->state.sender, caf::infinite, requeue_atom::value, id)
                .await(
                    [=](std::string& message) mutable {
                      --self->state.in_flight;
                      if (message.empty()) {
                        return give(rp, reply(send_reply::kind::invalid_state));
                      }
                      add_waiter(self, id, rp, message);
                      enqueue(self, queued_send{id, s.phone_number_id, s.access_token});
                    },
                    [=](caf::error&) mutable {
                      --self->state.in_flight;
                      give(rp, reply(send_reply::kind::unavailable));
                    });
          },
          [=](caf::error&) mutable {
            --self->state.in_flight;
            give(rp, reply(send_reply::kind::unavailable));
          });
}

// Decides a send on the facts a cloud sender reads now, and keeps them for the next send. await:
// decided in turn with the customer's messages (a message just stored may have opened the window).
void decide_on_facts(self_ptr self, outbound_send s, caf::typed_response_promise<send_reply> rp) {
  s.decided_on.reset();
  self->request(self->state.sender, caf::infinite, facts_atom::value, s.site, s.conversation_id,
                s.request.client_message_id.value_or(""))
      .await(
          [=](infra::send_facts& f) mutable {
            if (!f.found) {
              --self->state.in_flight;
              self->state.known_facts.reset();
              return give(rp, reply(send_reply::kind::not_found));
            }
            self->state.known_facts = infra::decided_facts{f.window_expires_at, f.has_recipient, f.marketing_opt_out};
            auto earlier = f.earlier_message_id ? std::optional<std::string>{f.earlier_fingerprint} : std::nullopt;
            auto v = domain::decide_send(s.request, earlier, f.has_recipient, f.window_expires_at, unix_now(),
                                         f.marketing_opt_out);
            if (v != domain::send_verdict::go) {
              --self->state.in_flight;
              return give(rp, verdict_reply(v, f));
            }
            if (s.request.kind == domain::outbound_kind::reaction) {
              return react(self, std::move(s), rp);
            }
            commit_send(self, std::move(s), rp);
          },
          [=](caf::error& e) mutable {
            --self->state.in_flight;
            auto r = reply(send_reply::kind::unavailable);
            r.error = to_string(e);
            rp.deliver(std::move(r));
          });
}

}  // namespace

conversation_impl::behavior_type conversation(conversation_impl::stateful_pointer<conversation_state> self,
                                              conversation_links links, site_actor site, std::string key) {
  self->state.sender = links.sender;
  self->state.site = site;
  self->state.key = key;
  self->state.site_id = links.site_id;
  self->state.send_wait = links.send_wait;
  self->state.send_doubt = links.send_doubt;
  auto writer = links.writer;
  auto changes = links.changes;
  self->state.idle = links.idle;
  self->delayed_send(self, links.idle, idlecheck_atom::value);
  return {
      [=](store_atom, unit_job& job) -> caf::result<domain::unit_outcome> {
        auto rp = self->make_response_promise<domain::unit_outcome>();
        ++self->state.in_flight;
        took_request(self);
        // A customer's message or a status may move the window, the recipient or the opt-out.
        const auto kept_opt_out = self->state.known_facts ? self->state.known_facts->marketing_opt_out : false;
        self->state.known_facts.reset();
        decide(self->state, job, unix_now());
        auto context = job.context;
        auto unit = job.unit;
        const auto window = job.window_expiry;
        // await, not then: the next unit waits until this one is committed.
        self->request(writer, caf::infinite, write_atom::value, std::move(job))
            .await(
                [=](domain::unit_outcome& o) mutable {
                  --self->state.in_flight;
                  if (context && o.new_message) {
                    self->state.known_facts = facts_after_customer_message(*context, *unit, window, kept_opt_out);
                    after_customer_message(self, *context, *unit);
                  }
                  if (context && context->welcome && o.new_conversation != 0) {
                    self->send(self->state.site, welcome_atom::value, self->state.key, o.new_conversation);
                  }
                  rp.deliver(std::move(o));
                },
                [=](caf::error& e) mutable {
                  --self->state.in_flight;
                  domain::unit_outcome o;
                  o.retryable = true;
                  o.error = "writer unavailable: " + to_string(e);
                  rp.deliver(std::move(o));
                });
        return rp;
      },
      [=](patch_atom, infra::conversation_change& change) -> caf::result<conversation_reply> {
        auto rp = self->make_response_promise<conversation_reply>();
        ++self->state.in_flight;
        took_request(self);
        auto receipt_number = change.receipt_phone_number_id;
        auto receipt_token = change.receipt_token;
        auto typing = change.typing;
        self->request(changes, caf::infinite, write_atom::value, std::move(change))
            .await(
                [=](conversation_reply& r) mutable {
                  --self->state.in_flight;
                  if (receipt_number && !r.failed && !r.newest_inbound_wamid.empty()) {
                    // read_receipts on_agent_view: the agent opened it; the customer sees it read.
                    self->send(self->state.sender, markread_atom::value, *receipt_number, receipt_token,
                               r.newest_inbound_wamid, typing);
                  }
                  rp.deliver(std::move(r));
                },
                [=](caf::error& e) mutable {
                  --self->state.in_flight;
                  conversation_reply r;
                  r.failed = true;
                  r.error = "conversation writer unavailable: " + to_string(e);
                  rp.deliver(std::move(r));
                });
        return rp;
      },
      [=](send_atom, outbound_send& s) -> caf::result<send_reply> {
        auto rp = self->make_response_promise<send_reply>();
        ++self->state.in_flight;
        took_request(self);
        if (s.resend_message_id != 0) {
          resend(self, std::move(s), rp);
          return rp;
        }
        // Facts kept from an earlier send decide it without reading them again; the enqueue
        // checks they still hold. Anything but `go` is decided again on facts read now (an
        // earlier request with the same client_message_id, say, is answered as a replay).
        if (auto& known = self->state.known_facts; known && s.request.kind != domain::outbound_kind::reaction &&
            domain::decide_send(s.request, std::nullopt, known->has_recipient, known->window_expires_at,
                                unix_now(), known->marketing_opt_out) == domain::send_verdict::go) {
          s.decided_on = *known;
          commit_send(self, std::move(s), rp);
          return rp;
        }
        decide_on_facts(self, std::move(s), rp);
        return rp;
      },
      [=](resume_atom, std::int64_t message_id, std::string& phone_number_id, std::string& token) {
        took_request(self);
        enqueue(self, queued_send{message_id, std::move(phone_number_id), std::move(token)});
      },
      [=](wait_atom, std::int64_t) { end_waits(self); },
      [=](retry_atom) {
        self->state.attempting = false;
        pump(self);
      },
      [=](go_atom, bool claimed) { attempt(self, claimed); },
      [=](stop_atom) {
        // Requests still waiting for their send's outcome get what is true now: it is queued
        // (stored with its outbox entry), and the next process sends it. CAF 0.17 would answer
        // nothing for a promise that dies with the actor.
        for (auto& [id, w] : self->state.waiting) {
          w.answer.deliver(reply(send_reply::kind::queued, w.message));
        }
        self->state.waiting.clear();
        self->quit();
      },
      [=](idlecheck_atom) {
        auto& st = self->state;
        if (st.in_flight == 0 && st.waiting.empty() && st.received == st.received_at_check) {
          // The site decides: units it already forwarded are in our mailbox before its stop. No
          // next check is scheduled: a pending one would keep a retired actor's memory until it
          // fired. If the site declines, a request is on its way, and took_request() resumes.
          st.idle_asked = true;
          self->send(site, idle_atom::value, key, self->id(), st.received);
          return;
        }
        st.received_at_check = st.received;
        self->delayed_send(self, st.idle, idlecheck_atom::value);
      },
  };
}

}  // namespace wachat::actors
