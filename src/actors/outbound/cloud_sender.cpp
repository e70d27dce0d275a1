#include "actors/outbound/cloud_sender.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <algorithm>
#include <deque>
#include <set>
#include <unordered_map>

#include "actors/outbound/upload_resolver.hpp"
#include "actors/supervision/fault_point.hpp"
#include "actors/supervision/supervised_workers.hpp"
#include "domain/send_pacing.hpp"
#include "infra/blob_store.hpp"
#include "infra/cached_statement.hpp"
#include "infra/graph_client.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

// A worker also takes Graph's answers, which the client's thread sends it.
using reacted_atom = caf::atom_constant<caf::atom("reacted")>;
// To itself, behind what its mailbox holds: write down and claim what has gathered.
using batch_atom = caf::atom_constant<caf::atom("batch")>;
// To itself, every renew_every while files are uploading: renew their sends' claims.
using renew_atom = caf::atom_constant<caf::atom("renew")>;
using worker_interface =
    cloud_sender_actor::extend<caf::reacts_to<answer_atom, std::int64_t, infra::graph_response>,
                               caf::reacts_to<reacted_atom, std::uint64_t, infra::graph_response>,
                               caf::reacts_to<batch_atom>, caf::reacts_to<renew_atom>>;

struct worker_state {
  std::string url;
  // Shared with the upload helpers, which may outlive this worker by one upload.
  std::shared_ptr<infra::graph_client> graph;
  std::shared_ptr<infra::blob_store> blobs;  // agents' uploaded files
  // Uploads to Meta run in helpers, at most max_uploads at once; the rest wait here in order.
  struct upload_wait {
    attempt_job job;
    upload_job upload;
  };
  std::deque<upload_wait> uploads_waiting;
  std::size_t uploads_running = 0;
  // Claims of attempts whose file is still on its way to Meta (waiting or uploading), by message
  // id: renewed every renew_every so that the doubt period never passes before the send itself
  // leaves (infra::renew_claims). An id whose claim was found lost is no longer here.
  std::unordered_map<std::int64_t, int> uploading;
  std::chrono::milliseconds renew_every{30000};
  bool renew_scheduled = false;
  infra::metrics::counter* late = nullptr;  // wachat_sends_slot_missed_total
  std::unique_ptr<pqxx::connection> conn;
  struct in_flight {
    int attempt = 0;
    std::string site;
    caf::typed_response_promise<attempt_result> answer;
  };
  std::unordered_map<std::int64_t, in_flight> calls;  // by message id
  // Attempts to claim and Meta's accepted sends to write down, gathered while the worker waited
  // on its connection: each batch is one statement (a round trip and a commit for all).
  struct to_claim {
    attempt_job job;
    caf::typed_response_promise<attempt_result> answer;
  };
  std::vector<to_claim> claims;
  struct to_record {
    infra::sent_record sent;
    attempt_result result;
    caf::typed_response_promise<attempt_result> answer;
  };
  std::vector<to_record> records;
  struct to_enqueue {
    outbound_send send;
    caf::typed_response_promise<infra::send_enqueued> answer;
  };
  std::vector<to_enqueue> enqueues;
  struct to_decide {
    infra::facts_item item;
    caf::typed_response_promise<infra::send_facts> answer;
  };
  std::vector<to_decide> facts;
  // Entries claimed as they were queued, until their conversation's attempt comes at the slot.
  // One not asked for by `use_by` (claim_grace after its slot) is given back (release_claims).
  // Only with a single worker (claims_here): the pool hands requests out in turn, and a claimed
  // attempt must reach the worker that holds the claim.
  bool claims_here = true;
  struct early_claim {
    infra::send_attempt claim;
    std::chrono::steady_clock::time_point use_by;
  };
  std::unordered_map<std::int64_t, early_claim> claimed;
  bool batch_scheduled = false;
  struct reaction_call {
    std::int64_t target = 0;
    std::string emoji;
    caf::typed_response_promise<attempt_result> answer;
  };
  std::unordered_map<std::uint64_t, reaction_call> reactions;
  std::uint64_t next_reaction = 0;
  static inline const char* name = "cloud_sender";

  worker_state() = default;
  worker_state(const worker_state&) = delete;
  worker_state& operator=(const worker_state&) = delete;
  // CAF 0.17 answers nothing for a promise that dies unanswered, so a worker that dies (an
  // exception in one request) answers everything it held: its askers try again, as for a
  // request that reached no worker, instead of waiting for good.
  ~worker_state() {
    auto gone = [](auto& answer) {
      if (answer.pending()) {
        answer.deliver(caf::make_error(caf::sec::request_receiver_down));
      }
    };
    for (auto& c : claims) gone(c.answer);
    for (auto& r : records) gone(r.answer);
    for (auto& e : enqueues) gone(e.answer);
    for (auto& f : facts) gone(f.answer);
    for (auto& [id, call] : calls) gone(call.answer);
    for (auto& [key, call] : reactions) gone(call.answer);
    // Claims whose attempt never came: given back, so that the retry of their conversation
    // (after request_receiver_down) claims them again at once, not after the doubt period.
    if (!claimed.empty() && conn && conn->is_open()) {
      std::vector<infra::held_claim> ids;
      for (const auto& [id, c] : claimed) {
        ids.push_back({id, c.claim.attempt});
      }
      try {
        infra::release_claims(*conn, ids);
      } catch (const std::exception& e) {
        infra::log_warn("cloud_sender_db_failed", {{"step", "release_claims"}, {"error", e.what()}});
      }
    }
  }
};

// How long after its slot an entry claimed as it was queued waits for its conversation's attempt,
// which comes at the slot unless the conversation actor died meanwhile: then the claim is given
// back (infra::release_claims), and the entry goes with the outbox sweep. Below the shortest
// doubt period (WACHAT_SEND_DOUBT_MS, 1 s at least, counted from the slot): a claim is never
// used after the sweep may have handed its entry to another attempt.
constexpr auto claim_grace = std::chrono::milliseconds(500);

pqxx::connection_base& connection(worker_state& st) {
  if (!st.conn || !st.conn->is_open()) {
    st.conn.reset();
    st.conn = infra::connect_for_probes(st.url);
  }
  return *st.conn;
}

// Runs `f` on the worker's connection; a failure is logged and yields nullopt (the caller
// answers "unavailable", and the conversation actor tries again later).
template <class F>
auto with_db(worker_state& st, const char* what, F f) -> std::optional<decltype(f(connection(st)))> {
  try {
    return f(connection(st));
  } catch (const std::exception& e) {
    if (st.conn && !st.conn->is_open()) {
      st.conn.reset();
    }
    infra::log_warn("cloud_sender_db_failed", {{"step", what}, {"error", e.what()}});
    return std::nullopt;
  }
}

std::optional<std::string> wamid_of(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("messages") && j["messages"].is_array() && !j["messages"].empty() &&
      j["messages"][0].is_object() && j["messages"][0].contains("id") && j["messages"][0]["id"].is_string()) {
    return j["messages"][0]["id"].get<std::string>();
  }
  return std::nullopt;
}

using worker_ptr = worker_interface::stateful_pointer<worker_state>;

void schedule_batch(worker_ptr self) {
  if (!self->state.batch_scheduled) {
    self->state.batch_scheduled = true;
    self->send(self, batch_atom::value);
  }
}

// Writes down what Meta took, in one statement.
void record_batch(worker_ptr self) {
  auto records = std::move(self->state.records);
  self->state.records.clear();
  if (records.empty()) {
    return;
  }
  std::vector<infra::sent_record> sent;
  for (auto& rec : records) {
    sent.push_back(rec.sent);
  }
  auto texts = with_db(self->state, "record_sent", [&](pqxx::connection_base& c) { return infra::record_sent(c, sent); });
  for (std::size_t k = 0; k < records.size(); ++k) {
    auto& rec = records[k];
    if (!texts) {
      // Meta has it, but we could not write that down: leave the entry `sending`. The doubt
      // period brings it back; by then a status naming it can be adopted instead of resending.
      rec.result.what = attempt_result::kind::unavailable;
    } else {
      rec.result.what = attempt_result::kind::sent;
      rec.result.message = std::move((*texts)[k]);
    }
    rec.answer.deliver(std::move(rec.result));
  }
}

// Reads the facts the gathered sends are decided on, in one query.
void facts_batch(worker_ptr self) {
  auto pending = std::move(self->state.facts);
  self->state.facts.clear();
  if (pending.empty()) {
    return;
  }
  std::vector<infra::facts_item> items;
  for (const auto& p : pending) {
    items.push_back(p.item);
  }
  auto facts = with_db(self->state, "facts", [&](pqxx::connection_base& c) { return infra::load_send_facts(c, items); });
  for (std::size_t i = 0; i < pending.size(); ++i) {
    if (facts) {
      pending[i].answer.deliver(std::move((*facts)[i]));
    } else {
      pending[i].answer.deliver(caf::make_error(caf::sec::runtime_error, "database unavailable"));
    }
  }
}

// Stores the gathered sends: one statement, each conversation once in it (a second send of one
// conversation waits for the next statement, in the order they came). A deadlock is retried
// inside enqueue_sends; any other failure fails the statement's sends (503, nothing stored
// twice).
void enqueue_batch(worker_ptr self) {
  auto pending = std::move(self->state.enqueues);
  self->state.enqueues.clear();
  std::vector<bool> done(pending.size(), false);
  for (std::size_t first = 0; first < pending.size(); ++first) {
    if (done[first]) {
      continue;
    }
    std::vector<std::size_t> group;
    std::vector<infra::enqueue_item> items;
    std::set<std::int64_t> conversations;
    for (std::size_t i = first; i < pending.size(); ++i) {
      const auto& send = pending[i].send;
      if (!done[i] && conversations.insert(send.conversation_id).second) {
        done[i] = true;
        group.push_back(i);
        items.push_back({send.site, send.conversation_id, &send.request,
                         self->state.claims_here ? send.claim_after_us : std::nullopt, send.decided_on});
      }
    }
    auto results = with_db(self->state, "enqueue", [&](pqxx::connection_base& c) { return infra::enqueue_sends(c, items); });
    for (std::size_t k = 0; k < group.size(); ++k) {
      auto& p = pending[group[k]];
      if (results) {
        auto& e = (*results)[k];
        if (e.claim.claimed) {
          // Kept here for the attempt; the conversation only needs to know it was claimed.
          const auto slot = std::chrono::steady_clock::now() +
                            std::chrono::microseconds(p.send.claim_after_us.value_or(0));
          self->state.claimed[e.message_id] = {std::move(e.claim), slot + claim_grace};
          e.claim = infra::send_attempt{};
          e.claim.claimed = true;
        }
        p.answer.deliver(std::move(e));
      } else {
        // Not tried again here: the statement may have committed before the failure (a
        // connection lost after COMMIT), and a second run would store the sends twice.
        p.answer.deliver(caf::make_error(caf::sec::runtime_error, "database unavailable"));
      }
    }
  }
}

// Gives back the claims whose use_by has passed.
void drop_stale_claims(worker_state& st) {
  if (st.claimed.empty()) {
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  std::vector<infra::held_claim> stale;
  for (auto it = st.claimed.begin(); it != st.claimed.end();) {
    if (now > it->second.use_by) {
      stale.push_back({it->first, it->second.claim.attempt});
      it = st.claimed.erase(it);
    } else {
      ++it;
    }
  }
  if (!stale.empty()) {
    with_db(st, "release_claims", [&](pqxx::connection_base& c) {
      infra::release_claims(c, stale);
      return true;
    });
  }
}

// The call waiting for this message's Meta answer (or its upload), taken out of the waiting
// ones; none when no call waits for it.
std::optional<worker_state::in_flight> take_call(worker_state& st, std::int64_t message_id) {
  auto it = st.calls.find(message_id);
  if (it == st.calls.end()) {
    return std::nullopt;
  }
  auto call = std::move(it->second);
  st.calls.erase(it);
  return call;
}

// Uploads to Meta at once per worker (upload helpers); later ones wait in order.
constexpr std::size_t max_uploads = 2;

void uploaded(worker_ptr self, const attempt_job& job, upload_outcome& o);
void start_uploads(worker_ptr self);
void schedule_renewal(worker_ptr self);
void post_to_graph(worker_ptr self, const attempt_job& job, int attempt, const std::string& site, std::string body,
                   caf::typed_response_promise<attempt_result> answer);

// Whether the attempt's slot in the number's rate has passed by more than the lateness allowed
// (domain::slot_lateness_us): sent now, it would reach Meta together with the sends of later
// slots, and one second there could hold more than the rate (a sender busy with a statement
// that waits for a lock holds up every attempt behind it).
bool past_slot(const attempt_job& job) {
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
  return !domain::may_depart(now, job.depart_by_us);
}

// Answers an attempt that missed its slot: nothing sent and no claim held, so the conversation
// takes a new slot and attempts it again.
void answer_late(worker_ptr self, caf::typed_response_promise<attempt_result>& answer) {
  if (self->state.late) {
    self->state.late->fetch_add(1, std::memory_order_relaxed);
  }
  attempt_result r;
  r.what = attempt_result::kind::late;
  answer.deliver(std::move(r));
}

// Sends a claimed attempt's body to Meta; the answer comes back as answer_atom.
void call_graph(worker_ptr self, const attempt_job& job, infra::send_attempt& claim,
                caf::typed_response_promise<attempt_result> answer) {
  attempt_result r;
  r.attempt = claim.attempt;
  if (claim.no_recipient) {
    r.what = attempt_result::kind::failed;
    domain::graph_error e;
    e.code = 131026;  // as Meta answers a message it cannot deliver
    e.title = "The visitor has neither a phone number nor a WhatsApp user id";
    r.error = e;
    answer.deliver(std::move(r));
    return;
  }
  if (claim.body.find(domain::upload_marker) != std::string::npos) {
    // The file goes to Meta first, on a helper's thread: this worker goes on with the other
    // sends meanwhile. The promise waits with the calls (answered should this worker die).
    self->state.calls[job.message_id] = {claim.attempt, claim.site_id, std::move(answer)};
    self->state.uploads_waiting.push_back({job, upload_job{job.phone_number_id, job.access_token, std::move(claim.body)}});
    self->state.uploading[job.message_id] = claim.attempt;
    schedule_renewal(self);
    start_uploads(self);
    return;
  }
  if (past_slot(job)) {
    // Reached after its slot had passed (this worker was busy): Meta is not called, the claim
    // is given back, and the conversation takes a new slot.
    with_db(self->state, "release_claims", [&](pqxx::connection_base& c) {
      infra::release_claims(c, {infra::held_claim{job.message_id, claim.attempt}});
      return true;
    });
    answer_late(self, answer);
    return;
  }
  post_to_graph(self, job, claim.attempt, claim.site_id, std::move(claim.body), std::move(answer));
}

void schedule_renewal(worker_ptr self) {
  auto& st = self->state;
  if (!st.renew_scheduled && !st.uploading.empty()) {
    st.renew_scheduled = true;
    self->delayed_send(self, st.renew_every, renew_atom::value);
  }
}

// Renews the claims of the sends whose file is still on its way; forgets those found lost (the
// send then ends as not_claimed once its upload does, and whoever holds the entry sends it).
// The database unreachable: nothing is known lost, and the final check before Meta is called
// (claim_still_held) decides.
void renew_uploading(worker_ptr self) {
  auto& st = self->state;
  st.renew_scheduled = false;
  if (st.uploading.empty()) {
    return;
  }
  std::vector<infra::held_claim> claims;
  for (const auto& [id, attempt] : st.uploading) {
    claims.push_back({id, attempt});
  }
  auto held = with_db(st, "renew_claims", [&](pqxx::connection_base& c) { return infra::renew_claims(c, claims); });
  if (held) {
    std::unordered_map<std::int64_t, int> still;
    for (auto id : *held) {
      still[id] = st.uploading[id];
    }
    st.uploading = std::move(still);
  }
  schedule_renewal(self);
}

// Right before Meta is called for a send whose file went first: whether its claim is still held
// (renewed now), false when it is lost, nullopt when that cannot be known now (no database).
// The upload may have outlasted the doubt period (a renewal missed, a slow database) and the
// entry been handed to another attempt, here or in another process: calling Meta then could
// send the message twice.
std::optional<bool> claim_still_held(worker_ptr self, std::int64_t message_id, int attempt) {
  auto& st = self->state;
  if (st.uploading.erase(message_id) == 0) {
    return false;  // a renewal found it lost
  }
  auto held = with_db(st, "renew_claims", [&](pqxx::connection_base& c) {
    return infra::renew_claims(c, {infra::held_claim{message_id, attempt}});
  });
  if (!held) {
    return std::nullopt;
  }
  return !held->empty();
}

// An attempt that does not hold its entry: not_claimed with the message as it is now (whoever
// holds the entry sends it; "" is a message that is gone). Unavailable when the message cannot
// be read now (the conversation asks again later), not an empty message, which the API would
// take for a send that went.
attempt_result not_ours(worker_ptr self, std::int64_t message_id, int attempt) {
  attempt_result r;
  r.attempt = attempt;
  auto text = with_db(self->state, "load_message",
                      [&](pqxx::connection_base& c) { return infra::load_message_text(c, message_id); });
  if (text) {
    r.what = attempt_result::kind::not_claimed;
    r.message = std::move(*text);
  }
  return r;
}

// Ends an attempt whose claim was lost before Meta was called.
void end_lost_claim(worker_ptr self, std::int64_t message_id, worker_state::in_flight& call) {
  infra::log_warn("send_claim_lost", {{"message_id", std::to_string(message_id)},
                                      {"attempt", std::to_string(call.attempt)},
                                      {"reason", "the file's upload outlasted the claim"}});
  call.answer.deliver(not_ours(self, message_id, call.attempt));
}

// Starts waiting uploads while fewer than max_uploads run: each holds a file in memory twice
// (the file and its multipart body) and a database connection, and one agent's file sent to
// many customers would otherwise start that many at once.
void start_uploads(worker_ptr self) {
  auto& st = self->state;
  while (st.uploads_running < max_uploads && !st.uploads_waiting.empty()) {
    auto next = std::move(st.uploads_waiting.front());
    st.uploads_waiting.pop_front();
    if (st.uploading.count(next.job.message_id) == 0) {
      // Its claim was found lost while it waited: no upload for a send that is not ours.
      if (auto call = take_call(st, next.job.message_id)) {
        end_lost_claim(self, next.job.message_id, *call);
      }
      continue;
    }
    ++st.uploads_running;
    auto helper = spawn_upload_helper(self->home_system(), st.url, st.blobs, st.graph);
    auto job = next.job;
    self->request(helper, caf::infinite, upload_atom::value, std::move(next.upload))
        .then([=](upload_outcome& o) { uploaded(self, job, o); },
              [=](caf::error&) {
                upload_outcome lost;
                uploaded(self, job, lost);
              });
  }
}

// The upload of a send's file ended: the send goes to Meta, or fails without having left.
void uploaded(worker_ptr self, const attempt_job& job, upload_outcome& o) {
  --self->state.uploads_running;
  start_uploads(self);
  auto taken = take_call(self->state, job.message_id);
  if (!taken) {
    self->state.uploading.erase(job.message_id);  // renewed no longer
    return;
  }
  auto& call = *taken;
  attempt_result r;
  r.attempt = call.attempt;
  if (!o.reached) {
    self->state.uploading.erase(job.message_id);
    call.answer.deliver(std::move(r));  // unavailable: tried again later
    return;
  }
  if (o.error) {
    self->state.uploading.erase(job.message_id);
    r.what = attempt_result::kind::failed;
    r.error = std::move(o.error);
    r.request_sent = false;
    call.answer.deliver(std::move(r));
    return;
  }
  const auto held = claim_still_held(self, job.message_id, call.attempt);
  if (!held) {
    // Not known: unavailable, and the conversation asks again later. The claim, still ours or
    // not, comes back through the doubt period; Meta was not called.
    call.answer.deliver(std::move(r));
    return;
  }
  if (!*held) {
    end_lost_claim(self, job.message_id, call);
    return;
  }
  post_to_graph(self, job, call.attempt, call.site, std::move(o.body), std::move(call.answer));
}

void post_to_graph(worker_ptr self, const attempt_job& job, int attempt, const std::string& site, std::string body,
                   caf::typed_response_promise<attempt_result> answer) {
  self->state.calls[job.message_id] = {attempt, site, std::move(answer)};
  infra::graph_request req;
  req.method = infra::graph_method::post;
  req.path = "/" + job.phone_number_id + "/messages";
  req.access_token = job.access_token;
  req.body = std::move(body);
  auto me = caf::actor_cast<caf::actor>(self);
  const auto id = job.message_id;
  self->state.graph->request(std::move(req), [me, id](infra::graph_response res) {
    caf::anon_send(me, answer_atom::value, id, std::move(res));
  });
}

// Claims the gathered attempts in one statement, then calls Meta for each claimed.
void claim_batch(worker_ptr self) {
  auto pending = std::move(self->state.claims);
  self->state.claims.clear();
  if (pending.empty()) {
    return;
  }
  // Already past their slot (this worker was busy): not claimed at all.
  pending.erase(std::remove_if(pending.begin(), pending.end(),
                               [&](worker_state::to_claim& p) {
                                 if (!past_slot(p.job)) {
                                   return false;
                                 }
                                 answer_late(self, p.answer);
                                 return true;
                               }),
                pending.end());
  if (pending.empty()) {
    return;
  }
  std::vector<std::int64_t> ids;
  for (const auto& p : pending) {
    ids.push_back(p.job.message_id);
  }
  auto claims = with_db(self->state, "begin_attempt",
                        [&](pqxx::connection_base& c) { return infra::begin_attempts(c, ids); });
  // Past their slot by the time the statement came back: given back in one statement.
  std::vector<bool> late(pending.size(), false);
  std::vector<infra::held_claim> back;
  for (std::size_t i = 0; claims && i < pending.size(); ++i) {
    if ((*claims)[i].claimed && past_slot(pending[i].job)) {
      late[i] = true;
      back.push_back({pending[i].job.message_id, (*claims)[i].attempt});
    }
  }
  if (!back.empty()) {
    with_db(self->state, "release_claims", [&](pqxx::connection_base& c) {
      infra::release_claims(c, back);
      return true;
    });
  }
  for (std::size_t i = 0; i < pending.size(); ++i) {
    auto& p = pending[i];
    if (!claims) {
      p.answer.deliver(attempt_result{});  // unavailable
      continue;
    }
    if (late[i]) {
      answer_late(self, p.answer);
      continue;
    }
    auto& claim = (*claims)[i];
    if (!claim.claimed) {
      p.answer.deliver(not_ours(self, p.job.message_id, claim.attempt));
      continue;
    }
    call_graph(self, p.job, claim, std::move(p.answer));
  }
}

void answered(worker_interface::stateful_pointer<worker_state> self, std::int64_t message_id,
              infra::graph_response& res) {
  auto taken = take_call(self->state, message_id);
  if (!taken) {
    return;
  }
  auto& call = *taken;
  attempt_result r;
  r.attempt = call.attempt;
  r.request_sent = res.request_sent;
  std::optional<std::string> wamid;
  if (res.ok()) {
    wamid = wamid_of(res.body);
    if (!wamid) {
      // A 2xx without Meta's shape: Meta may have taken it, so it is in doubt, not failed.
      domain::graph_error e;
      e.transport = true;
      e.http_status = res.status;
      e.title = "Graph answered without a message id";
      res.error = e;
      r.request_sent = true;
    }
  }
  if (!wamid) {
    r.what = attempt_result::kind::failed;
    r.error = res.error;
    call.answer.deliver(std::move(r));
    return;
  }
  self->state.records.push_back(
      {infra::sent_record{message_id, std::move(*wamid), std::move(call.site)}, std::move(r), std::move(call.answer)});
  schedule_batch(self);
}

worker_interface::behavior_type worker(worker_interface::stateful_pointer<worker_state> self, std::string url,
                                       std::shared_ptr<infra::graph_client> graph,
                                       std::shared_ptr<infra::blob_store> blobs, bool claims_here,
                                       std::chrono::milliseconds doubt, infra::metrics::counter* late) {
  self->state.url = std::move(url);
  self->state.late = late;
  // Four renewals per doubt period: one missed (a slow statement) still leaves time.
  self->state.renew_every = std::max(doubt / 4, std::chrono::milliseconds(100));
  self->state.claims_here = claims_here;
  self->state.graph = graph;
  self->state.blobs = blobs;
  return {
      [=](facts_atom, const std::string& site, std::int64_t conversation,
          const std::string& client_id) -> caf::result<infra::send_facts> {
        fault_point("cloud_sender");
        auto rp = self->make_response_promise<infra::send_facts>();
        self->state.facts.push_back(
            {infra::facts_item{site, conversation,
                               client_id.empty() ? std::nullopt : std::optional<std::string>{client_id}},
             rp});
        schedule_batch(self);
        return rp;
      },
      [=](enqueue_atom, const outbound_send& s) -> caf::result<infra::send_enqueued> {
        auto rp = self->make_response_promise<infra::send_enqueued>();
        self->state.enqueues.push_back({s, rp});
        schedule_batch(self);
        return rp;
      },
      [=](attempt_atom, const attempt_job& job) -> caf::result<attempt_result> {
        fault_point("cloud_sender_attempt");
        auto rp = self->make_response_promise<attempt_result>();
        if (job.claimed) {
          drop_stale_claims(self->state);  // this one too, if it came too late to be used
          auto it = self->state.claimed.find(job.message_id);
          if (it == self->state.claimed.end()) {
            // Held by a worker that died since (it gave the claim back) or given back as stale:
            // unavailable, and the conversation's retry claims the entry as usual.
            rp.deliver(attempt_result{});
            return rp;
          }
          auto claim = std::move(it->second.claim);
          self->state.claimed.erase(it);
          call_graph(self, job, claim, rp);
          return rp;
        }
        self->state.claims.push_back({job, rp});
        schedule_batch(self);
        return rp;
      },
      [=](batch_atom) {
        self->state.batch_scheduled = false;
        drop_stale_claims(self->state);
        // Finished sends first: their conversations' next messages wait on them.
        record_batch(self);
        facts_batch(self);
        enqueue_batch(self);
        claim_batch(self);
      },
      [=](answer_atom, std::int64_t message_id, infra::graph_response& res) { answered(self, message_id, res); },
      [=](renew_atom) { renew_uploading(self); },
      [=](react_atom, const reaction_job& job) -> caf::result<attempt_result> {
        auto target = with_db(self->state, "reaction_target", [&](pqxx::connection_base& c) {
          return infra::find_reaction_target(c, job.conversation_id, job.target);
        });
        attempt_result r;
        if (!target) {
          return r;  // unavailable
        }
        if (!*target) {
          r.what = attempt_result::kind::not_claimed;
          return r;
        }
        domain::outbound_request req;
        req.kind = domain::outbound_kind::reaction;
        req.reaction_target = (*target)->wamid;
        req.emoji = job.emoji;
        auto body = domain::graph_send_body(req, (*target)->to, (*target)->message_id, std::nullopt);
        body.erase("biz_opaque_callback_data");  // a reaction is no message of ours
        auto rp = self->make_response_promise<attempt_result>();
        auto key = self->state.next_reaction++;
        self->state.reactions[key] = {(*target)->message_id, job.emoji, rp};
        infra::graph_request g;
        g.method = infra::graph_method::post;
        g.path = "/" + job.phone_number_id + "/messages";
        g.access_token = job.access_token;
        g.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        auto me = caf::actor_cast<caf::actor>(self);
        self->state.graph->request(std::move(g), [me, key](infra::graph_response res) {
          caf::anon_send(me, reacted_atom::value, key, std::move(res));
        });
        return rp;
      },
      [=](reacted_atom, std::uint64_t key, infra::graph_response& res) {
        auto it = self->state.reactions.find(key);
        if (it == self->state.reactions.end()) {
          return;
        }
        auto call = std::move(it->second);
        self->state.reactions.erase(it);
        attempt_result r;
        r.attempt = 1;
        if (!res.ok()) {
          r.what = attempt_result::kind::failed;
          r.error = res.error;
          r.request_sent = res.request_sent;
          call.answer.deliver(std::move(r));
          return;
        }
        auto text = with_db(self->state, "set_reaction", [&](pqxx::connection_base& c) {
          return infra::set_agent_reaction(c, call.target, call.emoji);
        });
        r.what = text ? attempt_result::kind::sent : attempt_result::kind::unavailable;
        r.message = text.value_or("");
        call.answer.deliver(std::move(r));
      },
      [=](settle_atom, const attempt_decision& d) -> caf::result<std::string> {
        auto text = with_db(self->state, "settle", [&](pqxx::connection_base& c) {
          if (d.give_up) {
            return infra::record_failed(c, d.message_id, d.error, d.retryable, d.window_closed_at);
          }
          infra::record_retry(c, d.message_id, d.delay_ms, d.error);
          return infra::load_message_text(c, d.message_id);
        });
        if (!text) {
          return caf::make_error(caf::sec::runtime_error, "database unavailable");
        }
        return std::move(*text);
      },
      [=](markread_atom, std::string& number, std::string& token, std::string& wamid, bool typing) {
        nlohmann::json body{{"messaging_product", "whatsapp"}, {"status", "read"}, {"message_id", wamid}};
        if (typing) {
          body["typing_indicator"] = {{"type", "text"}};
        }
        infra::graph_request req;
        req.method = infra::graph_method::post;
        req.path = "/" + number + "/messages";
        req.access_token = std::move(token);
        req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        self->state.graph->request(std::move(req), [wamid](infra::graph_response res) {
          if (!res.ok()) {
            infra::log_warn("read_receipt_failed", {{"wamid", wamid},
                                                    {"code", std::to_string(res.error->code)},
                                                    {"error", res.error->title}});
          }
        });
      },
      [=](optout_atom, const std::string& site, const std::string& key, bool opt_out) {
        with_db(self->state, "marketing_opt_out", [&](pqxx::connection_base& c) {
          infra::set_marketing_opt_out(c, site, key, opt_out);
          return true;
        });
      },
      [=](optout_atom, std::int64_t message) {
        with_db(self->state, "marketing_opt_out", [&](pqxx::connection_base& c) {
          infra::set_marketing_opt_out_of_message(c, message);
          return true;
        });
      },
      [=](refacts_atom, const std::string& site, std::int64_t conversation,
          std::int64_t message) -> caf::result<infra::resend_facts> {
        auto f = with_db(self->state, "resend_facts", [&](pqxx::connection_base& c) {
          return infra::load_resend_facts(c, site, conversation, message);
        });
        if (!f) {
          return caf::make_error(caf::sec::runtime_error, "database unavailable");
        }
        return std::move(*f);
      },
      [=](requeue_atom, std::int64_t message) -> caf::result<std::string> {
        auto text = with_db(self->state, "requeue", [&](pqxx::connection_base& c) {
          return infra::requeue_failed(c, message).value_or("");
        });
        if (!text) {
          return caf::make_error(caf::sec::runtime_error, "database unavailable");
        }
        return std::move(*text);
      },
      [=](stop_atom) { self->quit(); },
  };
}

struct pool_state {
  supervised_workers workers;
  std::size_t next = 0;
  static inline const char* name = "cloud_senders";
};

using pool_interface = cloud_sender_actor::extend<caf::reacts_to<restart_atom, std::size_t>>;
using pool_actor = pool_interface::stateful_pointer<pool_state>;

// The next live worker, round robin; nullopt when none is up (each is restarting).
std::optional<cloud_sender_actor> next_worker(pool_actor self) {
  auto& st = self->state;
  for (std::size_t n = 0; n < st.workers.size(); ++n) {
    auto i = st.next++ % st.workers.size();
    if (st.workers.idle(i) || st.workers.busy(i)) {
      return caf::actor_cast<cloud_sender_actor>(st.workers.worker(i));
    }
  }
  return std::nullopt;
}

template <class R, class... Ts>
caf::result<R> forward(pool_actor self, Ts&&... xs) {
  if (auto w = next_worker(self)) {
    return self->delegate(*w, std::forward<Ts>(xs)...);
  }
  return caf::make_error(caf::sec::runtime_error, "no cloud sender is up");
}

pool_interface::behavior_type pool(pool_actor self, std::string url, unsigned count,
                                   std::shared_ptr<infra::graph_client> graph, std::shared_ptr<infra::blob_store> blobs,
                                   std::chrono::milliseconds doubt, std::shared_ptr<infra::metrics> m) {
  // The metrics outlive the actor system (main), so the worker may keep a plain pointer.
  auto* late = m ? &m->get_counter("wachat_sends_slot_missed_total",
                                   "Sends whose rate slot passed before their sender could call Meta; each took a new slot")
                 : nullptr;
  self->state.workers = supervised_workers{
      "wachat_cloud_sender", count,
      [self, url, graph, blobs, count, doubt, late](std::size_t) {
        // Detached: a worker blocks on its own connection, never on the scheduler's threads.
        return caf::actor_cast<caf::actor>(
            self->home_system().spawn<caf::detached>(worker, url, graph, blobs, count == 1, doubt, late));
      },
      m};
  self->state.workers.start(self);
  self->set_down_handler([=](caf::down_msg& down) { self->state.workers.on_down(self, down); });
  return {
      [=](facts_atom a, std::string& site, std::int64_t conv, std::string& client) {
        return forward<infra::send_facts>(self, a, std::move(site), conv, std::move(client));
      },
      [=](enqueue_atom a, outbound_send& s) { return forward<infra::send_enqueued>(self, a, std::move(s)); },
      [=](attempt_atom a, attempt_job& j) { return forward<attempt_result>(self, a, std::move(j)); },
      [=](react_atom a, reaction_job& j) { return forward<attempt_result>(self, a, std::move(j)); },
      [=](settle_atom a, attempt_decision& d) { return forward<std::string>(self, a, std::move(d)); },
      [=](refacts_atom a, std::string& site, std::int64_t conv, std::int64_t msg) {
        return forward<infra::resend_facts>(self, a, std::move(site), conv, msg);
      },
      [=](requeue_atom a, std::int64_t msg) { return forward<std::string>(self, a, msg); },
      [=](optout_atom a, std::string& site, std::string& key, bool opt_out) {
        if (auto w = next_worker(self)) {
          self->send(*w, a, std::move(site), std::move(key), opt_out);
        }
      },
      [=](optout_atom a, std::int64_t message) {
        if (auto w = next_worker(self)) {
          self->send(*w, a, message);
        }
      },
      [=](markread_atom a, std::string& number, std::string& token, std::string& wamid, bool typing) {
        if (auto w = next_worker(self)) {
          self->send(*w, a, std::move(number), std::move(token), std::move(wamid), typing);
        }
      },
      [=](restart_atom, std::size_t i) { self->state.workers.restart(self, i); },
      [=](stop_atom) {
        self->state.workers.stop_all();
        self->quit();
      },
  };
}

}  // namespace

cloud_sender_actor spawn_cloud_senders(caf::actor_system& sys, const std::string& database_url, unsigned workers,
                                       std::shared_ptr<infra::graph_client> graph,
                                       std::shared_ptr<infra::blob_store> blobs, std::chrono::milliseconds doubt,
                                       std::shared_ptr<infra::metrics> metrics) {
  return caf::actor_cast<cloud_sender_actor>(
      sys.spawn(pool, database_url, workers, graph, blobs, doubt, std::move(metrics)));
}

}  // namespace wachat::actors
